"""One short real-data run: grid_audio on 48 shared s1 clips, the loss falls and transcripts come out."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "grid_audio.yaml"


@pytest.mark.slow
def test_grid_audio_trains_on_real_clips_and_transcribes(grid_root, tmp_path):
    from avtoolkit.engine.evaluate import evaluate
    from avtoolkit.engine.run import run_recipe

    overrides = [f"data.root={grid_root}", f"data.cache_dir={tmp_path / 'cache'}", "data.workers=0",
                 "data.max_clips={train: 48, val: 8, test: 8}", "data.batch_size=8", "trainer.max_epochs=16",
                 "logging.plots=false"]
    run_dir = tmp_path / "run"
    metrics = run_recipe(RECIPE, overrides, run_dir=run_dir)
    assert 0.0 <= metrics["test/cer"] <= 1.5
    with open(run_dir / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    key = "train/loss_epoch" if "train/loss_epoch" in rows[0] else "train/loss"
    losses = [float(r[key]) for r in rows if r.get(key)]
    assert len(losses) == 16 and losses[-1] < 0.8 * losses[0]
    predictions = tmp_path / "predictions.jsonl"
    evaluate(RECIPE, run_dir / "checkpoints" / "best.ckpt", save_predictions=predictions, overrides=overrides)
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(rows) == 8 and all(len(r["reference"].split()) == 6 for r in rows)
    assert any(r["prediction"].strip() for r in rows), "every test transcript came out empty"
