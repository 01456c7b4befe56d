"""``trainer.precision``: bf16 only where the hardware has it natively, and the choice in the run's log.

This machine has AVX512-BF16; an AVX2-only CPU is simulated by its flags, or for real by
capping oneDNN to its AVX2 kernels (``ONEDNN_MAX_CPU_ISA=AVX2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

import toy
from avtoolkit.engine import precision, run_recipe
from avtoolkit import hardware
from avtoolkit.engine.precision import choose_precision, resolve_precision
from avtoolkit.hardware import native_bf16_cpu

AVX2_ONLY = {"sse4_2", "avx", "avx2", "fma", "f16c"}  # e.g. Haswell .. Comet Lake, Zen 1-3
AVX512_BF16 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"}  # Cooper Lake, Zen 4


@pytest.mark.parametrize("flags, cap, native", [
    (AVX2_ONLY, None, False),
    (AVX2_ONLY | {"avx512f", "avx512_vnni"}, None, False),  # AVX-512 and VNNI, but no bf16 (Cascade Lake)
    (AVX512_BF16, None, True),
    (AVX2_ONLY | {"amx_tile", "amx_bf16"}, None, True),
    ({"fp", "asimd", "bf16"}, None, True),  # Arm with the BF16 extension
    (AVX512_BF16, "AVX2", False),  # oneDNN capped to the kernels an AVX2 CPU runs
    (AVX512_BF16, "avx512_core_vnni", False),
    (AVX512_BF16, "AVX512_CORE_BF16", True),
    (AVX512_BF16, "DEFAULT", True),
])
def test_native_bf16_follows_the_flags_and_onednns_cap(flags, cap, native):
    assert native_bf16_cpu(flags, cap) is native


def test_cpuinfo_flags_are_read_on_x86_and_arm():
    assert "avx2" in hardware.cpu_flags("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert "bf16" in hardware.cpu_flags("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert hardware.cpu_flags("nothing here") == frozenset()


@pytest.mark.parametrize("requested, device, native, want, emulated", [
    ("auto", "cpu", True, "bf16-mixed", False),
    ("auto", "cpu", False, "32-true", False),
    ("auto", "cuda", True, "bf16-mixed", False),
    ("auto", "cuda", False, "32-true", False),  # pre-Ampere GPU
    ("auto", "mps", True, "32-true", False),
    ("bf16-mixed", "cpu", False, "bf16-mixed", True),  # explicit: kept, but flagged
    ("bf16-mixed", "cpu", True, "bf16-mixed", False),
    ("32-true", "cpu", True, "32-true", False),
    (16, "cuda", False, "16", False),
])
def test_choose_precision(requested, device, native, want, emulated):
    choice = choose_precision(requested, device, native)
    assert (choice.precision, choice.emulated) == (want, emulated)
    assert choice.log_line().startswith(f"precision: {want} (trainer.precision={requested}; ")


def test_an_onednn_cap_to_avx2_makes_auto_train_in_fp32(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: frozenset(AVX512_BF16))
    assert resolve_precision("auto", "cpu").precision == "bf16-mixed"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    choice = resolve_precision("auto", "cpu")
    assert choice.precision == "32-true" and "ONEDNN_MAX_CPU_ISA=AVX2" in choice.reason


class _Dtypes(L.Callback):
    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.model.encoders["video"].proj.register_forward_hook(lambda _m, _a, out: self.dtypes.add(out.dtype))


@pytest.mark.parametrize("cpu, want, dtype", [(AVX2_ONLY, "32-true", torch.float32),
                                               (AVX512_BF16, "bf16-mixed", torch.bfloat16)])
def test_auto_precision_run_trains_in_what_the_cpu_does_natively_and_logs_it(toy_components, tmp_path: Path,
                                                                             monkeypatch, cpu, want, dtype):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: frozenset(cpu))
    spy = _Dtypes()
    metrics = run_recipe(toy.words_recipe(trainer={"precision": "auto", "max_epochs": 1, "accelerator": "cpu"}),
                         run_dir=tmp_path / "run", callbacks=[spy])
    assert metrics
    assert spy.dtypes == {dtype}
    log = (tmp_path / "run" / "training.log").read_text()
    assert f"precision: {want} (trainer.precision=auto; this CPU " in log
    assert "CPU flags: " in log


def test_explicit_bf16_on_a_cpu_without_it_is_kept_with_a_warning(toy_components, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: frozenset(AVX2_ONLY))
    run_recipe(toy.words_recipe(trainer={"precision": "bf16-mixed", "max_epochs": 1, "accelerator": "cpu"}),
               run_dir=tmp_path / "run")
    log = (tmp_path / "run" / "training.log").read_text()
    assert "WARNING avtoolkit.engine: precision: bf16-mixed" in log
    assert "bf16 is emulated and slower than fp32; trainer.precision=auto would train in fp32 here" in log


def test_shipped_recipes_ask_for_auto():
    from avtoolkit.recipe import load_recipe

    recipes = Path(__file__).resolve().parents[2] / "recipes"
    for name in ("avasr", "avasr_conformer", "lrw_effv2t", "lrw_effv2s", "lrw_effv2b", "lrw_resnet18_mstcn"):
        assert load_recipe(recipes / f"{name}.yaml")["trainer"]["precision"] == "auto", name
