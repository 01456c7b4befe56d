"""The objective registry: the head tasks it knows, what an unknown task is told, the contract check."""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from avtoolkit.models.checkpoint import accepts, check_command
from avtoolkit.errors import CheckpointError
from avtoolkit.objectives import Objective, objective_class
from avtoolkit.registry import OBJECTIVES, RegistryError, registry_for


def test_the_built_in_objectives_are_the_head_tasks() -> None:
    assert OBJECTIVES.names() == ["classification", "ctc", "hybrid", "language_model"]
    assert registry_for("objective") is OBJECTIVES
    from avtoolkit.models.heads.ctc import CTCHead
    from avtoolkit.models.heads.hybrid import HybridCTCAttentionHead
    from avtoolkit.models.heads.lm import LanguageModelHead
    from avtoolkit.models.heads.word_classifier import WordClassifier

    heads = (CTCHead, WordClassifier, HybridCTCAttentionHead, LanguageModelHead)
    assert {h.task for h in heads} == set(OBJECTIVES.names())


def test_an_unknown_task_names_the_registered_objectives() -> None:
    with pytest.raises(ValueError) as err:
        objective_class("seq2seq")
    message = str(err.value)
    assert "'seq2seq'" in message and "classification, ctc, hybrid, language_model" in message
    assert "avtoolkit list-components --kind objective" in message


class _Transducer(Objective):
    """A stand-in fourth objective."""

    monitor = ("val/wer", "min")
    commands = ("transcribe",)

    def loss(self, out: Mapping[str, Any], batch: Mapping[str, Any]) -> Any:
        return out["loss"]


def test_a_new_objective_is_known_to_the_unknown_task_message_and_to_the_commands() -> None:
    with OBJECTIVES.temporary("transducer", _Transducer):
        assert objective_class("transducer") is _Transducer
        with pytest.raises(ValueError, match="classification, ctc, hybrid, language_model, transducer"):
            objective_class("seq2seq")
        assert accepts("transducer", "transcribe") and not accepts("transducer", "predict")
        with pytest.raises(CheckpointError, match="this needs a ctc or hybrid or transducer model"):
            check_command("x.ckpt", "classification", "transcribe")
    assert "transducer" not in OBJECTIVES


def test_an_objective_without_a_monitor_is_refused_at_registration() -> None:
    class NoMonitor(Objective):
        """Forgets its monitor."""

    with pytest.raises(RegistryError, match="does not set the class attribute `monitor`"):
        OBJECTIVES.register("no_monitor", NoMonitor)
    assert "no_monitor" not in OBJECTIVES


@pytest.mark.parametrize(("task", "command", "needs", "use"), [
    ("classification", "transcribe", "ctc or hybrid", "`avtoolkit predict`"),
    ("hybrid", "predict", "classification", "`avtoolkit transcribe`"),
    ("ctc", "predict", "classification", "`avtoolkit transcribe`"),
    ("ctc", "noise-eval", None, None),
    ("None", "predict", "classification", "its own command"),
])
def test_a_checkpoint_is_refused_by_a_command_its_objective_does_not_list(task, command, needs, use) -> None:
    if needs is None:
        check_command("run/best.ckpt", task, command)
        return
    with pytest.raises(CheckpointError) as err:
        check_command("run/best.ckpt", task, command)
    assert str(err.value).startswith(f"run/best.ckpt: holds a {task} model, this needs a {needs} model; use it with {use}")


def test_a_task_registered_for_no_objective_is_accepted_by_no_command() -> None:
    assert not accepts("seq2seq", "transcribe") and not accepts("seq2seq", "predict")
