"""Smoke test of ``benchmarks/run.py``: the quick mode on one tiny recipe and the data path."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT.parent / "shared" / "data" / "grid"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, tiny_recipe) -> tuple[dict, str, Path]:
    tmp = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "data",
         "--recipe", str(tiny_recipe), "--out", str(tmp / "results")],
        capture_output=True, text=True, timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((tmp / "results" / "quick.json").read_text()), proc.stdout, tmp / "results"


def test_quick_run_measures_the_tiny_recipe_on_every_path(quick_run):
    results, stdout, out = quick_run
    assert results["meta"]["threads"] == 2 and results["meta"]["mode"] == "quick"
    ceiling = results["ceiling"]
    assert ceiling["gflops"] == max(ceiling["gflops_start"], ceiling["gflops_end"]) > 1.0
    tiny = results["models"]["tiny_lrw"]
    assert 1e5 < tiny["params"] < 5e6 and tiny["macs_per_clip"] > 1e8
    assert {"eager", "fast_fp32", "onnxruntime"} <= set(tiny["paths"])
    for name, entry in tiny["paths"].items():
        assert "error" not in entry, (name, entry)
        assert entry["latency"]["median_ms"] > 0 and entry["latency"]["runs"] >= 3
        assert entry["throughput"]["clips_per_s"] > 0
        if name == "eager":
            continue
        # fp32 paths reproduce eager log-probabilities; bf16 (8-bit mantissa) only roughly
        limit = 0.2 if "bf16" in name else 1e-3
        assert entry["agreement"]["max_abs_diff"] < limit, (name, entry["agreement"])
    assert tiny["train_step"]["clips_per_s"] > 0
    # each path is read against the ceiling of its own number format
    assert {entry["throughput"]["ceiling_format"] for entry in tiny["paths"].values()} == {"fp32"}
    # training paths side by side: today's step is the 1.0x every other one is read against
    train = tiny["train_paths"]
    assert train["fp32 (before)"]["speedup"] == 1.0 and len(train) == 2, train
    assert all(e["cpu_ms_per_step"] > 0 for e in train.values()), train
    # memory: a training step (weights, gradients, AdamW moments, saved activations) needs
    # more than one clip's inference, and the process holds more than the run alone
    memory = tiny["memory"]
    assert {"eager b1", "eager b2", "train_fp32 b2"} <= set(memory), memory
    assert all(e["peak_mib"] > e["run_mib"] >= 0 for e in memory.values()), memory
    assert memory["train_fp32 b2"]["run_mib"] > memory["eager b1"]["run_mib"], memory
    assert "peak RSS MiB" in stdout and "clips per CPU-s" in stdout
    # which kernels ran: the machine's line once, and each path's engine and format beside it
    kernels = results["meta"]["kernels"]
    assert "CPUExecutionProvider" in kernels["onnxruntime_providers"] and isinstance(kernels["native_bf16"], bool)
    assert "kernels: CPU flags " in stdout and "int8 kernel " in stdout
    assert tiny["paths"]["onnxruntime"]["kernels"]["engine"] == "onnxruntime CPUExecutionProvider"
    assert tiny["paths"]["eager"]["kernels"] == {"engine": "torch (oneDNN/MKL fp32)", "format": "fp32",
                                                 "emulated": False}
    # flagship recipes were filtered out by --only; the table and markdown show the tiny one
    assert set(results["models"]) == {"tiny_lrw"}
    assert "tiny_lrw" in stdout and "onnxruntime" in stdout
    assert "tiny_lrw" in (out / "quick.md").read_text()
    # A quick run is a smoke run: it lists the targets it could measure without a verdict.
    assert "quick run: targets are judged by a full `make bench`" in stdout
    assert "quick  prepare LRW clips (fixed crop)" in stdout and "MISSED" not in stdout


def test_quick_run_measures_the_data_path(quick_run):
    data = quick_run[0]["data"]
    assert data["prepare_lrw_fixed"]["clips"] == 8
    assert data["prepare_lrw_fixed"]["clips_per_s_per_core"] > 0 < data["prepare_lrw_fixed"]["clips_per_s_wall"]
    assert data["load_prepared_rois"]["clips_per_s_per_core"] > 0
    train = data["train_batches"]  # a data-loader worker's whole job at the training batch size
    assert train["batch"] == 2 and train["clips"] >= 8 and train["clips_per_s_per_worker"] > 0
    assert train["read_ms_per_clip"] > 0 and train["augment_ms_per_clip"] > 0
    assert data["log_mel"]["audio_s_per_s_per_core"] > 1.0  # far faster than real time
    if not GRID.is_dir():
        pytest.skip(f"GRID clips not found at {GRID}: face-crop rates not measured")
    assert data["prepare_lrw_face"]["clips"] == 8, data["prepare_lrw_face"]
    assert data["grid_decode_crop"]["face"]["frames_per_s_per_core"] > 0


def test_quick_run_measures_a_ceiling_per_number_format(quick_run):
    results, stdout, _ = quick_run
    per_format = results["ceilings"]
    assert per_format["fp32"] == results["ceiling"]
    for fmt in ("fp32", "bf16", "int8"):
        entry = per_format[fmt]
        assert "skipped" in entry or entry["gflops"] == max(entry["gflops_start"], entry["gflops_end"]) > 1.0, entry
    if "avx512_bf16" in per_format["cpu_flags"] or "amx_bf16" in per_format["cpu_flags"]:
        # native bf16 doubles the multiply width: its ceiling is above fp32's
        assert per_format["bf16"]["gflops"] > per_format["fp32"]["gflops"], per_format
    assert "matmul ceilings" in stdout and "fp32 " in stdout and "int8 " in stdout


def test_paths_are_read_against_their_own_formats_ceiling():
    sys.path.insert(0, str(ROOT))
    from benchmarks.ceiling import path_format

    assert [path_format(p) for p in ("eager", "fast_fp32", "onnxruntime", "fast_bf16", "onnxruntime_int8")] == \
        ["fp32", "fp32", "fp32", "bf16", "int8"]


def test_targets_report_misses_with_the_measured_figure():
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import check_targets

    def path(ms: float, fraction: float, clips_per_s: float = 1.0) -> dict:
        return {"latency": {"median_ms": ms},
                "throughput": {"ceiling_fraction": fraction, "clips_per_s": clips_per_s, "batch": 16}}

    results = {"ceiling": {"gflops": 100.0}, "models": {
        "lrw_effv2t": {"paths": {"eager": path(80.0, 0.2, 15.0), "onnxruntime": path(30.0, 0.3),
                                 "eager_before": path(120.0, 0.1, 10.0), "eager_bf16": path(60.0, 0.3, 20.0),
                                 "eager_bf16_before": path(80.0, 0.2, 16.0)}},
        "avasr": {"paths": {"eager": path(40.0, 0.1), "onnxruntime": path(20.0, 0.1)}}},
        "data": {"prepare_lrw_fixed": {"clips_per_s_per_core": 30.0}}}
    results["models"]["avasr"]["train_paths"] = {"fp32 (before)": {"speedup": 1.0}, "bf16": {"speedup": 1.5}}
    verdicts = {t["what"]: (t["met"], t["measured"]) for t in check_targets(results)}
    assert verdicts["lrw_effv2t batch-16 throughput, fraction of its format's ceiling"] == (False, "30% of 100 GFLOP/s (onnxruntime, fp32)")
    assert verdicts["lrw_effv2t batch-1 latency (fastest path)"] == (True, "30.0 ms (onnxruntime)")
    assert verdicts["avasr 5 s clip batch-1 latency (fastest path)"] == (False, "20.0 ms (onnxruntime)")
    assert verdicts["avasr 5 s clip batch-1 latency (eager)"] == (True, "40.0 ms")
    assert verdicts["lrw_effv2t eager forward fp32 vs before the inference route (same run)"] == \
        (True, "1.50x at batch 1, 1.50x at batch 16")
    assert verdicts["lrw_effv2t eager forward bf16 vs before the inference route (same run)"] == \
        (False, "1.33x at batch 1, 1.25x at batch 16")
    assert verdicts["prepare LRW clips (fixed crop)"][0] is True
    assert verdicts["avasr training step vs today's (CPU time, same run)"] == (False, "1.50x (bf16)")


def test_int8_path_is_built_from_the_fp32_graph_and_tracks_it(tmp_path):
    # Full runs time `onnxruntime_int8` (quick runs skip it): it must build and run.
    import onnx

    sys.path.insert(0, str(ROOT))
    from avtoolkit import build_model
    from benchmarks import models as model_bench

    model = build_model(ROOT / "recipes" / "avasr.yaml", ["model.encoders.video.channels=[8, 8, 8]",
                                                          "model.encoders.video.hidden_dim=32"]).eval()
    settings = dataclasses.replace(model_bench.Settings.quick(), onnx_int8=True)
    paths = model_bench.build_paths(model, settings, tmp_path)
    assert not isinstance(paths["onnxruntime_int8"], str), paths["onnxruntime_int8"]
    ops = {n.op_type for n in onnx.load(str(tmp_path / "model.int8.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "Conv" in ops  # QDQ around fp32-typed Conv nodes
    batch = model_bench.example_batch(model, 1, seed=5)
    with torch.no_grad():
        want = model(batch)["log_probs"]
    got = paths["onnxruntime_int8"](batch)["log_probs"]
    assert got.shape == want.shape and (got - want).abs().mean() < 0.05 * want.abs().mean()
    # the benchmark says what ran: ONNX Runtime's provider, and the quantisation format
    kernels = model_bench.path_kernels("onnxruntime_int8", paths["onnxruntime_int8"], model_bench.cpu_kernels())
    assert kernels["engine"] == "onnxruntime CPUExecutionProvider"
    assert kernels["format"] == "int8 QDQ, u8 activations x s8 7-bit weights"
    assert kernels["quantization"]["saturation_free"] is True


def test_bf16_paths_are_marked_emulated_where_the_cpu_lacks_native_bf16(monkeypatch):
    sys.path.insert(0, str(ROOT))
    from benchmarks import models as model_bench

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the kernels an AVX2-only CPU runs
    info = model_bench.cpu_kernels()
    assert info["native_bf16"] is False and "bf16 EMULATED" in model_bench.kernels_line(info)
    kernels = model_bench.path_kernels("eager_bf16", None, info)
    assert kernels["emulated"] is True and model_bench.kernels_text(kernels).endswith("EMULATED on this CPU]")
    assert model_bench.path_kernels("eager", None, info)["emulated"] is False
    quick = model_bench.Settings.quick()
    assert not model_bench.run_bf16(quick)  # emulated bf16 is not measured unless asked (--bf16)
    assert model_bench.run_bf16(dataclasses.replace(quick, bf16=True, bf16_emulated=True))
