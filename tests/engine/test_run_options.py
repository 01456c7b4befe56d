"""Recipe options of ``run_recipe`` on the toy task: mixup, bf16-mixed, early stopping, pretrained."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import pytest
import torch

import toy
from avtoolkit.engine import CheckpointError, run_recipe
from avtoolkit.models.checkpoint import model_state_dict, read_checkpoint
from avtoolkit.registry import registry_for


class _Spy(L.Callback):
    """Keeps the model's weights at the start of fit and the dtype its encoder computes in."""

    def __init__(self) -> None:
        self.start: dict[str, torch.Tensor] = {}
        self.dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.start = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        pl_module.model.encoders["video"].proj.register_forward_hook(
            lambda _m, _args, out: self.dtypes.add(out.dtype))


def _rows(run_dir: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run_dir / "metrics.csv").open()))


def test_mixup_run_still_learns_the_toy_words(toy_components, tmp_path: Path):
    metrics = run_recipe(toy.words_recipe(loss={"mixup_alpha": 0.4}, trainer={"max_epochs": 4}),
                         run_dir=tmp_path / "mixup")
    assert metrics["test/acc"] > 0.8  # six classes: chance is 1/6
    rows = _rows(tmp_path / "mixup")
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])


def test_bf16_mixed_on_cpu_trains_in_bfloat16_with_finite_metrics(toy_components, tmp_path: Path):
    spy = _Spy()
    metrics = run_recipe(toy.words_recipe(trainer={"precision": "bf16-mixed"}), run_dir=tmp_path / "bf16",
                         callbacks=[spy])
    assert torch.bfloat16 in spy.dtypes  # autocast really ran the linear layers in bf16
    assert metrics and all(math.isfinite(v) for v in metrics.values())
    assert metrics["test/acc"] > 0.5
    assert all(math.isfinite(float(r["train/loss"])) for r in _rows(tmp_path / "bf16"))
    ckpt = read_checkpoint(tmp_path / "bf16/checkpoints/best.ckpt")
    assert all(v.dtype == torch.float32 for v in ckpt["state_dict"].values())  # weights stay fp32


class _Threads(L.Callback):
    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self.threads = torch.get_num_threads()


def test_trainer_threads_sets_the_runs_intra_op_threads(toy_components, tmp_path: Path):
    before, spy = torch.get_num_threads(), _Threads()
    try:
        torch.set_num_threads(2)
        run_recipe(toy.words_recipe(trainer={"threads": 1, "max_epochs": 1}), run_dir=tmp_path / "t", callbacks=[spy])
        assert spy.threads == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(Exception, match="trainer.threads: must be at least 1, got 0"):
        run_recipe(toy.words_recipe(trainer={"threads": 0}), run_dir=tmp_path / "zero")
    assert not (tmp_path / "zero").exists()


def test_early_stopping_stops_when_the_metric_cannot_improve(toy_components, tmp_path: Path):
    # min_delta larger than any accuracy change: no epoch after the first counts as better.
    recipe = toy.words_recipe(trainer={"max_epochs": 6}, early_stopping={"enabled": True, "patience": 1, "min_delta": 2.0})
    run_recipe(recipe, run_dir=tmp_path / "stop")
    rows = _rows(tmp_path / "stop")
    assert [r["epoch"] for r in rows] == ["1", "2"]  # epoch 1 sets the reference, epoch 2 exhausts patience 1
    results = json.loads((tmp_path / "stop/results.json").read_text())
    stopped = results["early_stopping"]
    assert stopped["stopped"] is True and (stopped["stopped_after_epoch"], stopped["max_epochs"]) == (2, 6)
    assert "val/acc did not improve in the last 1 records" in stopped["reason"]
    log = (tmp_path / "stop/training.log").read_text()
    assert "early stopping after epoch 2 of 6: Monitored metric val/acc did not improve" in log


def test_without_early_stopping_results_say_it_ran_every_epoch(toy_components, tmp_path: Path):
    run_recipe(toy.words_recipe(trainer={"max_epochs": 2}), run_dir=tmp_path / "full")
    results = json.loads((tmp_path / "full/results.json").read_text())
    assert results["early_stopping"] == {"stopped": False}
    assert "early stopping" not in (tmp_path / "full/training.log").read_text()


@pytest.fixture(scope="module")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained toy run whose best.ckpt initialises the pretrained runs."""
    run_dir = tmp_path_factory.mktemp("runs") / "source"
    with toy.registered():
        run_recipe(toy.words_recipe(trainer={"max_epochs": 2}), run_dir=run_dir)
    yield run_dir / "checkpoints" / "best.ckpt"


def test_pretrained_run_starts_from_the_source_weights(source_run: Path, toy_components, tmp_path: Path):
    spy = _Spy()
    recipe = toy.words_recipe(trainer={"max_epochs": 1}, pretrained={"path": str(source_run)})
    run_recipe(recipe, run_dir=tmp_path / "fine", callbacks=[spy])
    source = model_state_dict(read_checkpoint(source_run))
    assert spy.start.keys() == source.keys()
    for key, value in source.items():
        assert torch.equal(spy.start[key], value), key
    assert "pretrained: loaded every weight from" in (tmp_path / "fine/training.log").read_text()


class _FourWords(toy.ToyWords):
    """The toy task with a smaller vocabulary: a new head over the same frames."""

    vocabulary = toy.WORDS[:4]


@pytest.fixture
def four_words(toy_components) -> Iterator[None]:
    with registry_for("dataset").temporary("toy_words4", _FourWords):
        yield


def test_pretrained_strict_false_loads_all_but_the_new_head_and_names_it(source_run: Path, four_words, tmp_path: Path):
    spy = _Spy()
    recipe = toy.words_recipe(trainer={"max_epochs": 1}, data={"name": "toy_words4"},
                              pretrained={"path": str(source_run), "strict": False})
    metrics = run_recipe(recipe, run_dir=tmp_path / "new-head", callbacks=[spy])
    assert math.isfinite(metrics["test/acc"])
    source = model_state_dict(read_checkpoint(source_run))
    assert torch.equal(spy.start["encoders.video.proj.weight"], source["encoders.video.proj.weight"])
    assert spy.start["head.classifier.weight"].shape == (4, 16)
    log = (tmp_path / "new-head/training.log").read_text()
    assert "partial load" in log
    assert "head.classifier.weight checkpoint [6, 16] vs model [4, 16]" in log
    assert "head.classifier.bias checkpoint [6] vs model [4]" in log


def test_pretrained_strict_refuses_a_different_head_and_names_the_keys(source_run: Path, four_words, tmp_path: Path):
    recipe = toy.words_recipe(trainer={"max_epochs": 1}, data={"name": "toy_words4"},
                              pretrained={"path": str(source_run)})
    with pytest.raises(CheckpointError) as err:
        run_recipe(recipe, run_dir=tmp_path / "strict")
    assert "pretrained.strict: false" in str(err.value)
    assert "head.classifier.weight checkpoint [6, 16] vs model [4, 16]" in str(err.value)
    assert "encoders.video.proj.weight" not in str(err.value)  # only what differs is named


def test_lightning_product_tips_are_dropped_and_other_lines_kept(caplog):
    import logging

    import avtoolkit.engine.run  # noqa: F401  (installs the filter)

    lightning_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level(logging.INFO, logger=lightning_log.name):
        lightning_log.info("💡 Tip: For seamless cloud logging, try installing litlogger")
        lightning_log.info("GPU available: False, used: False")
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False, used: False"]
