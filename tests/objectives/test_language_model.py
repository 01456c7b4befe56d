"""The ``language_model`` objective: next-token NLL over the valid positions, perplexity per split, model checks."""

from __future__ import annotations

import math

import pytest
import torch

from avtoolkit.models.assemble import assemble
from avtoolkit.objectives import objective_class
from avtoolkit.recipe import RecipeError

TOKENS = ["<blank>", " ", "a", "b"]


def _batch() -> dict:
    # "ab" then end, and "b" then end (padded): the targets a text dataset makes
    return {"targets": torch.tensor([[2, 3, 0], [3, 0, 0]]), "target_lengths": torch.tensor([3, 2]),
            "texts": ["ab", "b"], "ids": ["x", "y"]}


def _out() -> dict:
    probs = torch.full((2, 3, 4), 0.25)
    probs[0, 0] = torch.tensor([0.1, 0.1, 0.7, 0.1])  # "a" after the start: likely
    return {"log_probs": probs.log(), "lengths": torch.tensor([3, 2])}


def test_loss_and_perplexity_count_the_valid_positions_only() -> None:
    objective = objective_class("language_model")(TOKENS)
    nll = -(math.log(0.7) + 4 * math.log(0.25))  # five valid positions; the padding is ignored
    assert float(objective.loss(_out(), _batch())) == pytest.approx(nll / 5, rel=1e-6)
    rows: list[dict] = []
    logged = objective.evaluate(_out(), _batch(), "val", rows)
    assert [entry.name for entry in logged] == ["perplexity"]
    assert float(logged[0].metric.compute()) == pytest.approx(math.exp(nll / 5), rel=1e-6)
    assert rows[0]["id"] == "x" and rows[0]["reference"] == "ab" and rows[0]["prediction"].startswith("a")
    assert rows[0]["score"] == pytest.approx(math.log(0.7) + 2 * math.log(0.25), abs=1e-5)
    assert objective_class("language_model").monitor == ("val/perplexity", "min")
    assert objective_class("language_model").outputs is None and "not exported" in objective_class(
        "language_model").export_note


def test_label_smoothing_moves_the_training_loss_not_the_perplexity() -> None:
    plain = objective_class("language_model")(TOKENS)
    smoothed = objective_class("language_model")(TOKENS, {"label_smoothing": 0.1})
    assert float(smoothed.loss(_out(), _batch())) != pytest.approx(float(plain.loss(_out(), _batch())))
    a = plain.evaluate(_out(), _batch(), "test")[0].metric.compute()
    b = smoothed.evaluate(_out(), _batch(), "test")[0].metric.compute()
    assert float(a) == pytest.approx(float(b))


@pytest.mark.parametrize("model, key", [
    ({"backends": [{"name": "transformer", "layers": 1, "heads": 2}]}, "model.backends.0"),
    ({"backends": [{"name": "lstm", "hidden": 8, "bidirectional": True}]}, "model.backends.0"),
    ({"encoders": {"audio": {"name": "audio_cnn"}}}, "model.encoders.audio"),
])
def test_a_model_that_sees_the_next_token_or_reads_no_text_is_refused(model, key) -> None:
    spec = {"encoders": {"text": {"name": "token_embedding", "dim": 8}}, "backends": [{"name": "lstm", "hidden": 8}],
            "head": {"name": "lm"}} | model
    objective = objective_class("language_model")(TOKENS)
    with pytest.raises(RecipeError, match=key.replace(".", r"\.")):
        objective.attach(assemble(spec))
