"""``run_recipe`` / ``evaluate`` end to end on tiny synthetic data (CPU, a few seconds each)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator

import pytest
import torch
import yaml

import toy
from avtoolkit.cli.main import main
from avtoolkit.engine import CheckpointError, TrainingDivergedError, evaluate, load_model, run_recipe
from avtoolkit.models.checkpoint import read_checkpoint
from avtoolkit.recipe import RecipeError

NOISY = {"noise": 3.0}  # hard enough that accuracy is not 1.0 after one epoch


@pytest.fixture(scope="module")
def words_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, float]]]:
    """One trained classification run (EMA on), shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("runs") / "words"
    with toy.registered():
        recipe = toy.words_recipe(ema={"enabled": True, "decay": 0.9}, data=NOISY, logging={"tensorboard": True})
        metrics = run_recipe(recipe, run_dir=run_dir)
    yield run_dir, metrics


def test_run_writes_everything_into_the_run_directory(words_run):
    run_dir, metrics = words_run
    for name in ("recipe.yaml", "metrics.csv", "results.json", "training.log", "curves.png",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["metrics"] == pytest.approx(metrics)
    assert results["monitor"] == "val/acc" and results["checkpoint"].endswith("best.ckpt")
    assert metrics["test/acc"] > 0.5  # six classes: chance is 1/6
    assert set(metrics) == {"test/acc", "test/acc_top5", "test/loss"}
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"])
    assert max(float(r["val/acc"]) for r in rows) == pytest.approx(results["best_score"])
    resolved = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    assert resolved["model"]["head"]["num_classes"] == len(toy.WORDS)  # injected from the dataset
    log = (run_dir / "training.log").read_text()
    assert "epoch 3/3" in log and "test results of" in log


def test_load_model_returns_the_ema_weights_of_best_ckpt(words_run, toy_components):
    run_dir, _ = words_run
    best = run_dir / "checkpoints" / "best.ckpt"
    loaded = load_model(best)
    assert loaded.task == "classification" and loaded.vocabulary == toy.WORDS
    assert not loaded.model.training
    ckpt = read_checkpoint(best)
    shadow = ckpt["callbacks"]["EMA"]["shadow"]
    weights = dict(loaded.model.state_dict())
    assert all(torch.equal(weights[k], v) for k, v in shadow.items())
    raw = ckpt["state_dict"]["model.head.classifier.weight"]
    assert not torch.equal(weights["head.classifier.weight"], raw)  # EMA differs from the trained weights
    assert ckpt["avtoolkit"]["version"] and ckpt["avtoolkit"]["recipe"]["name"] == "toy-words"


def test_evaluate_reproduces_the_test_metrics_and_writes_predictions(words_run, toy_components, tmp_path: Path):
    run_dir, metrics = words_run
    out = tmp_path / "pred.csv"
    again = evaluate(None, run_dir / "checkpoints" / "best.ckpt", save_predictions=out)
    assert again == pytest.approx(metrics)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 16 and set(rows[0]) == {"id", "reference", "prediction", "score"}
    accuracy = sum(r["reference"] == r["prediction"] for r in rows) / len(rows)
    assert accuracy == pytest.approx(metrics["test/acc"])
    assert all(0.0 < float(r["score"]) <= 1.0 for r in rows)


def test_cli_eval_on_the_val_split_writes_jsonl(words_run, toy_components, tmp_path: Path, capsys):
    run_dir, _ = words_run
    out = tmp_path / "val.jsonl"
    code = main(["eval", "--checkpoint", str(run_dir / "checkpoints" / "best.ckpt"), "--split", "val",
                 "--save-predictions", str(out)])
    assert code == 0
    assert "val/acc" in capsys.readouterr().out
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 16 and lines[0]["id"].startswith("val")


def test_resuming_with_a_different_model_names_the_keys(words_run, toy_components, tmp_path: Path):
    run_dir, _ = words_run
    with pytest.raises(CheckpointError) as err:
        run_recipe(toy.words_recipe(data=NOISY, model={"encoders": {"video": {"name": "toy_frames", "dim": 8}},
                                                       "head": {"name": "word_classifier"}}), resume=run_dir)
    assert "encoders.video.proj.weight checkpoint [16, 64] vs model [8, 64]" in str(err.value)


def test_num_classes_that_contradicts_the_data_is_a_recipe_error(toy_components, tmp_path: Path):
    recipe = toy.words_recipe()
    recipe["model"]["head"]["num_classes"] = 10
    with pytest.raises(RecipeError, match=r"model.head.num_classes: is 10 but dataset 'toy_words' has 6 classes"):
        run_recipe(recipe, run_dir=tmp_path / "r")


def test_resume_continues_exactly(toy_components, tmp_path: Path):
    recipe = toy.words_recipe(trainer={"max_epochs": 4}, data={**NOISY, "sizes": [32, 16, 16]},
                              ema={"enabled": True, "decay": 0.9}, early_stopping={"enabled": True, "patience": 9},
                              optim={"name": "sgd", "lr": 0.2})
    straight = run_recipe(recipe, run_dir=tmp_path / "straight")
    run_recipe(recipe, run_dir=tmp_path / "split", callbacks=[toy.StopAfter(2)])
    assert read_checkpoint(tmp_path / "split/checkpoints/last.ckpt")["epoch"] == 1
    assert main(["run", "--resume", str(tmp_path / "split")]) == 0  # its own recipe.yaml
    resumed = json.loads((tmp_path / "split/results.json").read_text())["metrics"]
    assert resumed == pytest.approx(straight, abs=1e-6)
    a = read_checkpoint(tmp_path / "straight/checkpoints/last.ckpt")
    b = read_checkpoint(tmp_path / "split/checkpoints/last.ckpt")
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (3, 16)
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    for key, value in a["callbacks"]["EMA"]["shadow"].items():
        torch.testing.assert_close(b["callbacks"]["EMA"]["shadow"][key], value, rtol=1e-5, atol=1e-6)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    rows_a = list(csv.DictReader((tmp_path / "straight/metrics.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "split/metrics.csv").open()))
    assert len(rows_b) == 4
    for ra, rb in zip(rows_a, rows_b):
        assert float(ra["val/loss"]) == pytest.approx(float(rb["val/loss"]), rel=1e-5)


def test_ctc_run_reports_wer_and_cer_and_writes_transcripts(toy_components, tmp_path: Path):
    metrics = run_recipe(toy.spelling_recipe(trainer={"max_epochs": 5}, optim={"lr": 0.05}), run_dir=tmp_path / "ctc")
    assert set(metrics) == {"test/wer", "test/cer", "test/loss"}
    rows = list(csv.DictReader((tmp_path / "ctc/metrics.csv").open()))
    assert float(rows[-1]["val/cer"]) < 0.8 * float(rows[0]["val/cer"])  # it learns to spell
    out = tmp_path / "pred.jsonl"
    again = evaluate(None, tmp_path / "ctc/checkpoints/best.ckpt", save_predictions=out)
    assert again == pytest.approx(metrics)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {x["reference"] for x in lines} <= set(toy.PHRASES)
    assert all(x["score"] <= 0 for x in lines)  # mean log-probability of the best path


def test_non_finite_loss_skips_steps_then_stops_with_the_last_good_checkpoint(toy_components, tmp_path: Path):
    recipe = toy.words_recipe(trainer={"max_bad_steps": 3})
    recipe["model"]["encoders"]["video"]["nan_after_steps"] = 8  # epoch 1 has 6 steps
    with pytest.raises(TrainingDivergedError, match="3 steps in a row"):
        run_recipe(recipe, run_dir=tmp_path / "nan")
    last = read_checkpoint(tmp_path / "nan/checkpoints/last.ckpt")
    assert last["global_step"] == 6 and last["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    log = (tmp_path / "nan/training.log").read_text()
    assert log.count("non-finite loss") == 3 and "skipping this step" in log
