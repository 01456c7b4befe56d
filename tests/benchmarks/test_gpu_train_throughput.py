"""The GPU training-throughput script runs its CPU smoke mode and reports what it measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_train_throughput import main  # noqa: E402


def test_cpu_smoke_mode_trains_and_writes_figures(tiny_recipe, tmp_path, capsys):
    recipe = tiny_recipe
    out = tmp_path / "gpu.json"
    assert main(["--recipe", str(recipe), "--device", "cpu", "--batch", "2", "--steps", "1",
                 "--warmup", "0", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["device"] == "cpu" and figures["bf16_autocast"] and figures["channels_last"]
    assert figures["clips_per_s"] > 0 and figures["steps"] == 1
    assert figures["lrw_epoch_minutes"] == 488_766 / figures["clips_per_s"] / 60
    assert [i["batch"] for i in figures["inference"]] == [1, 16]
    assert all(i["median_ms"] > 0 and i["clips_per_s"] > 0 for i in figures["inference"])
    assert "training clips/s" in capsys.readouterr().out


def test_cpu_smoke_mode_trains_a_ctc_recipe(tmp_path):
    # avasr (audio + video, CTC) shrunk: the script builds CTC targets and the CTC loss for it
    out = tmp_path / "avasr.json"
    assert main(["--recipe", str(ROOT / "recipes" / "avasr.yaml"), "--override", "model.encoders.video.channels=[8, 8, 8]",
                 "--override", "model.encoders.video.hidden_dim=32", "--device", "cpu", "--batch", "2",
                 "--steps", "1", "--warmup", "0", "--infer-batches", "1", "--out", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["task"] == "ctc" and figures["clips_per_s"] > 0 and figures["inference"][0]["batch"] == 1


@pytest.mark.slow  # ~50 s on a loaded 2-core machine (model steps, then a loader worker's start)
def test_cpu_smoke_mode_times_steps_streamed_from_shards(tiny_recipe, tmp_path, capsys):
    out = tmp_path / "streamed.json"
    assert main(["--recipe", str(tiny_recipe), "--device", "cpu", "--batch", "2", "--steps", "2", "--warmup", "0",
                 "--infer-batches", "1", "--stream-workers", "1", "--stream-clips", "8", "--out", str(out)]) == 0
    streamed = json.loads(out.read_text())["streamed"]
    assert streamed["workers"] == 1 and streamed["steps"] == 2 and streamed["clips_per_s"] > 0
    assert "streamed from shards, 1 loader workers" in capsys.readouterr().out
