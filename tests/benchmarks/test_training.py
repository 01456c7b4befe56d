"""The training paths benchmark/training.py compares: each one really trains, today's step is 1.0x."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import models as model_bench  # noqa: E402
from benchmarks import training  # noqa: E402


def _tiny(tiny_recipe):
    from avtoolkit import build_model

    return build_model(tiny_recipe)


def test_every_training_path_lowers_the_loss_on_a_repeated_batch(tiny_recipe):
    model = _tiny(tiny_recipe)
    batch = model_bench.example_batch(model, 2, seed=3)
    for path in training.train_paths(bf16=True):
        step = training.make_step(model, path, batch, model_bench._loss)
        losses = [step() for _ in range(6)]
        assert all(torch.isfinite(torch.tensor(losses))), (path, losses)
        assert losses[-1] < losses[0], (path.name, losses)


def test_the_benchmark_reads_every_path_against_todays_step(tiny_recipe):
    model = _tiny(tiny_recipe)
    batch = model_bench.example_batch(model, 2, seed=3)
    paths = [training.TrainPath(training.BASELINE), training.TrainPath("fused", adamw="fused")]
    result = training.bench_training(model, batch, model_bench._loss, paths, rounds=2, warmup=0)
    assert result[training.BASELINE]["speedup"] == 1.0
    assert result["fused"]["batch"] == 2 and result["fused"]["speedup"] > 0
    # the model the caller passed is not trained: each path trains its own copy
    again = _tiny(tiny_recipe)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
