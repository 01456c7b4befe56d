"""The training paths benchmarks/training.py compares: each computes today's loss, today's step is 1.0x."""

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


def test_every_training_path_computes_todays_loss(tiny_recipe):
    model = _tiny(tiny_recipe)
    for module in model.modules():
        # No dropout or drop-path: their masks are drawn in memory order, which channels-last
        # changes, so two layouts would draw different masks and compute different losses.
        if isinstance(getattr(module, "p", None), float):
            module.p = 0.0
    batch = model_bench.example_batch(model, 2, seed=3)
    losses = {}
    for path in training.train_paths(bf16=True):
        step = training.make_step(model, path, batch, model_bench._loss)
        losses[path.name] = step()
    base = losses[training.BASELINE]
    for name, loss in losses.items():
        # fp32 paths compute the same loss up to rounding order; bf16 to its 8-bit mantissa
        assert abs(loss - base) <= (0.05 if "bf16" in name else 1e-4) * abs(base), (name, losses)


def test_the_benchmark_reads_every_path_against_todays_step(tiny_recipe):
    model = _tiny(tiny_recipe)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = model_bench.example_batch(model, 2, seed=3)
    paths = [training.TrainPath(training.BASELINE), training.TrainPath("fused", adamw="fused")]
    result = training.bench_training(model, batch, model_bench._loss, paths, rounds=2, warmup=0)
    assert result[training.BASELINE]["speedup"] == 1.0
    assert result["fused"]["batch"] == 2 and result["fused"]["speedup"] > 0
    # the model the caller passed is not trained: each path trains its own copy
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
