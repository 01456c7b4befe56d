"""Per-recipe model benchmarks: size, MACs, latency, throughput, training step, fast paths."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks._timing import latency_ms, time_calls


@dataclass(frozen=True)
class Settings:
    """How hard to measure: ``full`` for ``make bench``, ``quick`` for the CI smoke run."""

    latency_runs: int = 30
    warmup: int = 5
    throughput_batch: int = 16
    throughput_runs: int = 3
    train_batch: int = 8
    train_runs: int = 3
    train_warmup: int = 1
    #: measure ``fold_bn+channels_last`` on its own too (it is always built: fast_fp32 uses it)
    intermediate_paths: bool = True
    agreement_batches: int = 4
    threads: int = 2
    onnx: bool = True
    int8: bool = True
    #: ONNX Runtime with static int8 (QDQ) convolutions and matmuls
    onnx_int8: bool = True
    bf16: bool = True
    #: run the bf16 paths even where bf16 is emulated (they are marked so); default: native only
    bf16_emulated: bool = False
    #: profile where the time goes when a target is missed
    profile: bool = True
    compile: bool = False
    #: peak resident memory per path, each in a fresh child process (benchmarks/memory.py)
    memory: bool = True
    #: alternating rounds of the training paths (benchmarks/training.py); 0: only today's step
    train_rounds: int = 3

    @classmethod
    def quick(cls, threads: int = 2) -> "Settings":
        return cls(latency_runs=3, warmup=1, throughput_batch=2, throughput_runs=1, train_batch=2,
                   train_runs=1, train_warmup=0, agreement_batches=1, threads=threads, int8=False, onnx_int8=False,
                   bf16=False, profile=False, intermediate_paths=False, train_rounds=1)


#: Input shapes per task: LRW clips are 29 frames of 88x88 mouth crops; an AV-ASR example is
#: a 5 s utterance: 500 log-mel frames (100/s) and 125 video frames (25 fps) of 64x64 crops.
LRW_FRAMES, LRW_SIZE = 29, 88
AVSR_AUDIO_FRAMES, AVSR_VIDEO_FRAMES, AVSR_SIZE, N_MELS = 500, 125, 64, 40


def example_batch(model: nn.Module, batch_size: int, seed: int = 0) -> dict[str, Tensor]:
    """A batch of the right shapes for ``model`` (random values, fixed seed)."""
    gen = torch.Generator().manual_seed(seed)
    batch: dict[str, Tensor] = {}
    ctc = model.task == "ctc"
    for modality, encoder in model.encoders.items():
        if modality == "video":
            frames, size = (AVSR_VIDEO_FRAMES, AVSR_SIZE) if ctc else (LRW_FRAMES, LRW_SIZE)
            channels = int(getattr(encoder, "in_channels", 1))
            batch["video"] = torch.randn(batch_size, frames, channels, size, size, generator=gen)
            batch["video_lengths"] = torch.full((batch_size,), frames, dtype=torch.long)
        elif modality == "audio":
            n_mels = int(getattr(encoder, "n_mels", getattr(encoder, "input_dim", N_MELS)) or N_MELS)
            batch["audio"] = torch.randn(batch_size, AVSR_AUDIO_FRAMES, n_mels, generator=gen)
            batch["audio_lengths"] = torch.full((batch_size,), AVSR_AUDIO_FRAMES, dtype=torch.long)
    if not ctc and "video" in batch:
        # LRW's word boundary: the word in the middle third of the clip.
        boundary = torch.zeros(batch_size, LRW_FRAMES)
        boundary[:, LRW_FRAMES // 3: 2 * LRW_FRAMES // 3] = 1.0
        batch["word_boundary"] = boundary
    return batch


def _loss(model: nn.Module, out: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor:
    log_probs = out["log_probs"].float()  # bf16 under autocast: the loss in fp32, as the engine does
    if model.task == "ctc":
        b = log_probs.shape[0]
        targets = torch.randint(1, log_probs.shape[-1], (b, 20))
        lengths = out.get("lengths", torch.full((b,), log_probs.shape[1], dtype=torch.long))
        return F.ctc_loss(log_probs.transpose(0, 1), targets, lengths, torch.full((b,), 20), blank=0)
    return F.nll_loss(log_probs, torch.zeros(log_probs.shape[0], dtype=torch.long))


def train_step(model: nn.Module, settings: Settings) -> dict[str, float]:
    """Forward + loss + backward at ``settings.train_batch``: clips/s and ms per step."""
    batch = example_batch(model, settings.train_batch, seed=1)
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        _loss(model, model(batch), batch).backward()

    times = time_calls(step, runs=settings.train_runs, warmup=settings.train_warmup)
    model.eval()
    median = sorted(times)[len(times) // 2]
    return {"batch": settings.train_batch, "step_ms": 1e3 * median, "clips_per_s": settings.train_batch / median}


def measure_path(run: Callable[[dict[str, Tensor]], Any], model: nn.Module, macs: float,
                 ceiling_gflops: float, settings: Settings) -> dict[str, Any]:
    """Batch-1 latency and batch-N throughput of one inference path."""
    one = example_batch(model, 1)
    many = example_batch(model, settings.throughput_batch)
    with torch.inference_mode():
        lat = latency_ms(time_calls(lambda: run(one), runs=settings.latency_runs, warmup=settings.warmup))
        times = time_calls(lambda: run(many), runs=settings.throughput_runs, warmup=1)
    clips_per_s = settings.throughput_batch / sorted(times)[len(times) // 2]
    gflops = 2 * macs * clips_per_s / 1e9
    return {"latency": lat, "throughput": {"batch": settings.throughput_batch, "clips_per_s": clips_per_s,
                                          "gflops": gflops, "ceiling_fraction": gflops / ceiling_gflops}}


def _error(exc: BaseException) -> str:
    """First line of an exception (exporter errors carry the whole traced graph)."""
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]


def export_and_load(model: nn.Module, path: Path, threads: int) -> Any:
    """The model exported to ``path`` (batch-2 example, parity-checked) and loaded in ONNX Runtime."""
    from avtoolkit.inference.export import export_onnx
    from avtoolkit.inference.runtime import OnnxModel

    example = example_batch(model, 2)
    # The random-weight benchmark models have no vocabulary; the runner needs none.
    export_onnx(model, example, path, vocabulary=[],
                extra_inputs=[k for k in example if k not in model.modalities and not k.endswith("_lengths")])
    return OnnxModel(path, threads=threads)


def build_paths(model: nn.Module, settings: Settings, workdir: Path) -> dict[str, Any]:
    """The inference paths to compare.

    ``eager`` is the model as built (its default forward, with the inference route of
    :mod:`avtoolkit.models.folding`); ``eager_before`` the same layers as written, the eager
    forward before that route; ``eager_bf16`` / ``eager_bf16_before`` both under bf16 autocast.
    ``fold_bn+channels_last``; ``fast_fp32`` adds 1x1 and temporal convs as GEMMs
    (:func:`~benchmarks.fast_paths.optimize_for_cpu`); ``fast_bf16`` runs that in bfloat16
    (CPUs with native bf16 only); ``fast_fp32+int8_linear`` quantises its ``nn.Linear`` layers;
    ``onnxruntime`` exports the eager model with the package's
    :func:`~avtoolkit.inference.export.export_onnx` (checked against eager on the export
    example) and runs it with its :class:`~avtoolkit.inference.runtime.OnnxModel` (ORT folds
    BatchNorm itself);
    ``onnxruntime_int8`` quantises that graph (static int8, calibrated here on the benchmark's
    random inputs: right for timing, while the accuracy cost is measured on a trained model
    by ``avtoolkit export --int8``); ``torch.compile`` (``--compile``) compiles the folded model.

    Returns:
        ``{name: callable or error string}``; a path that cannot be built is reported, and the
        others are still measured.
    """
    from benchmarks import fast_paths as fast

    example = (example_batch(model, 1),)
    paths: dict[str, Any] = {"eager": model}
    bf16 = run_bf16(settings)  # emulated bf16 is slower than fp32: only where native, unless asked
    makers: list[tuple[str, Callable[[], Any]]] = []
    if settings.intermediate_paths:  # the default forward against itself before the inference route
        makers.append(("eager_before", lambda: fast.layers_as_written(model)))
    if bf16:
        makers.append(("eager_bf16", lambda: fast.AutocastModel(model)))
        if settings.intermediate_paths:
            makers.append(("eager_bf16_before", lambda: fast.AutocastModel(paths["eager_before"])))
    makers += [
        ("fold_bn+channels_last", lambda: fast.to_channels_last(fast.fold_batchnorm(model, example))),
        ("fast_fp32", lambda: fast.convs_as_gemm(paths["fold_bn+channels_last"]))]
    if bf16:
        makers.append(("fast_bf16", lambda: fast.BFloat16Model(paths["fast_fp32"])))
    if settings.int8:
        makers.append(("fast_fp32+int8_linear", lambda: fast.quantize_linear_int8(paths["fast_fp32"])))
    onnx_path = workdir / "model.onnx"
    if settings.onnx:
        makers.append(("onnxruntime", lambda: export_and_load(model, onnx_path, settings.threads)))
    if settings.onnx and settings.onnx_int8:
        def ort_int8() -> Any:
            from avtoolkit.inference.quantize import quantize_onnx_int8
            from avtoolkit.inference.runtime import OnnxModel

            if not onnx_path.is_file():
                raise RuntimeError("quantises the onnxruntime path's graph, which failed to export")
            calibration = ({k: v.numpy() for k, v in example_batch(model, 1, seed=100 + i).items()} for i in range(8))
            return OnnxModel(quantize_onnx_int8(onnx_path, workdir / "model.int8.onnx", calibration),
                             threads=settings.threads)

        makers.append(("onnxruntime_int8", ort_int8))
    if settings.compile:
        makers.append(("torch.compile", lambda: fast.compile_model(paths["fold_bn+channels_last"])))
    for name, make in makers:
        try:
            paths[name] = make()
        except Exception as exc:  # keep measuring the other paths
            paths[name] = _error(exc)
        model.eval()  # whatever a path's construction did, eager is measured in evaluation mode
    if not settings.intermediate_paths:
        paths.pop("fold_bn+channels_last")
    return paths


def run_bf16(settings: Settings) -> bool:
    """Whether the bf16 paths run: where bf16 is native, or anywhere with ``bf16_emulated``."""
    from benchmarks import fast_paths as fast

    return settings.bf16 and (settings.bf16_emulated or fast.bf16_supported())


def cpu_kernels() -> dict[str, Any]:
    """What decides which kernels each format gets on this machine (printed once, kept in the results).

    torch's fp32/bf16 convolutions and matmuls run in oneDNN and MKL, which dispatch by CPUID
    capped by ``ONEDNN_MAX_CPU_ISA`` / ``MKL_ENABLE_INSTRUCTIONS``; ONNX Runtime's MLAS
    dispatches by CPUID alone (no cap): its int8 kernels use VNNI where the CPU has it, else
    AVX2's saturating ``vpmaddubsw`` (which avtoolkit's 7-bit int8 weights cannot overflow).
    """
    import onnxruntime
    import torch

    from avtoolkit.hardware import REPORTED_CPU_FLAGS, cpu_flags, native_bf16_cpu, onednn_isa_cap

    flags = cpu_flags()
    vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    return {"cpu_flags": [f for f in REPORTED_CPU_FLAGS if f in flags],
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_cpu_isa": onednn_isa_cap(),
            "mkl_enable_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS"),
            "native_bf16": native_bf16_cpu(),
            "onnxruntime_providers": onnxruntime.get_available_providers(),
            "onnxruntime_int8_kernel": ("VNNI (vpdpbusd, exact int32 sums)" if vnni else
                                        "AVX2 u8s8 (vpmaddubsw: int16 pair sums, saturating)")}


def kernels_line(info: dict[str, Any]) -> str:
    """The machine half of :func:`path_kernels` in one line."""
    caps = [f"ONEDNN_MAX_CPU_ISA={info['onednn_max_cpu_isa']}"] if info.get("onednn_max_cpu_isa") else []
    if info.get("mkl_enable_instructions"):
        caps.append(f"MKL_ENABLE_INSTRUCTIONS={info['mkl_enable_instructions']}")
    return (f"CPU flags {' '.join(info['cpu_flags']) or '(none of interest)'}; torch {info['torch_cpu_capability']}"
            f"{' with ' + ', '.join(caps) if caps else ''}; bf16 {'native' if info['native_bf16'] else 'EMULATED'}; "
            f"ONNX Runtime {', '.join(info['onnxruntime_providers'])}, int8 kernel {info['onnxruntime_int8_kernel']}"
            " (picked by CPUID, not capped)")


def path_kernels(name: str, run: Any, info: dict[str, Any]) -> dict[str, Any]:
    """Which kernels a path runs on this machine, and whether its format is emulated here."""
    if name.startswith("onnxruntime"):
        providers = run.session.get_providers() if hasattr(run, "session") else ["?"]
        entry: dict[str, Any] = {"engine": f"onnxruntime {'+'.join(providers)}", "format": "fp32", "emulated": False}
        if name == "onnxruntime_int8":
            from avtoolkit.inference.quantize import quantization_scheme

            scheme = quantization_scheme(run.path) or {}
            weights = "7-bit" if scheme.get("reduce_range") else "8-bit"
            entry.update(format=f"int8 {scheme.get('format', '?')}, u8 activations x s8 {weights} weights",
                         quantization=scheme, kernel=info["onnxruntime_int8_kernel"])
        return entry
    if "bf16" in name:
        return {"engine": "torch (oneDNN bf16)", "format": "bf16", "emulated": not info["native_bf16"]}
    if "int8_linear" in name:
        return {"engine": "torch (fp32 convs; fbgemm dynamic int8 Linear)", "format": "fp32+int8", "emulated": False}
    if name == "torch.compile":
        return {"engine": "torch.compile (Inductor C++)", "format": "fp32", "emulated": False}
    return {"engine": "torch (oneDNN/MKL fp32)", "format": "fp32", "emulated": False}


def kernels_text(kernels: dict[str, Any]) -> str:
    """``[torch (oneDNN bf16), bf16, EMULATED on this CPU]``: the benchmark's note beside a path."""
    parts = [kernels["engine"], kernels["format"]]
    if kernels.get("emulated"):
        parts.append("EMULATED on this CPU")
    return "[" + ", ".join(parts) + "]"


def memory_paths(settings: Settings) -> list[tuple[str, int]]:
    """``(path, batch)`` pairs whose peak memory is measured: inference at batch 1 and the
    throughput batch, one training step at the training batch."""
    bf16 = run_bf16(settings)
    pairs = [("eager", 1), ("eager", settings.throughput_batch)]
    if bf16:
        pairs += [("fast_bf16", 1), ("fast_bf16", settings.throughput_batch)]
    pairs.append(("train_fp32", settings.train_batch))
    if bf16:
        pairs.append(("train_bf16", settings.train_batch))
    return pairs


def bench_memory(recipe: Path, settings: Settings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Peak resident memory of each of :func:`memory_paths`, each in its own process."""
    from benchmarks.memory import measure

    out: dict[str, Any] = {}
    for path, batch in memory_paths(settings):
        key = f"{path} b{batch}"
        out[key] = measure(recipe, path, batch, settings.threads)
        if "error" in out[key]:
            log(f"  memory {key}: ERROR {out[key]['error']}")
        else:
            log(f"  memory {key}: peak {out[key]['peak_mib']:.0f} MiB (+{out[key]['run_mib']:.0f} MiB for the run)")
    return out


def bench_train_paths(model: nn.Module, settings: Settings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Today's training step against the faster ones (:mod:`benchmarks.training`)."""
    from benchmarks import training

    paths = training.train_paths(run_bf16(settings), settings.compile)
    if settings.train_rounds <= 1:  # a smoke run: today's step and the engine's new default only
        paths = [paths[0], paths[-1]]
    batch = example_batch(model, settings.train_batch, seed=1)
    result = training.bench_training(model, batch, _loss, paths, rounds=max(1, settings.train_rounds),
                                     warmup=settings.train_warmup)
    for name, entry in result.items():
        log(f"  train {name}: " + (f"ERROR {entry['error']}" if "error" in entry else
                                   f"{entry['cpu_ms_per_step']:.0f} CPU-ms per step, {entry['speedup']:.2f}x"))
    return result


def bench_model(model: nn.Module, ceiling_gflops: float, settings: Settings,
                log: Callable[[str], None] = print, memory_recipe: Path | None = None) -> dict[str, Any]:
    """Every measurement of one model; a path that fails is recorded with its error, not fatal.

    ``memory_recipe``: the recipe file ``model`` was built from; its children measure memory.
    """
    from avtoolkit.models.summary import count_macs
    from benchmarks import fast_paths as fast

    model.eval()
    params = sum(p.numel() for p in model.parameters())
    parts = {path: float(macs) for path, macs in count_macs(model, example_batch(model, 1)).items()}
    macs = sum(parts.values())
    result: dict[str, Any] = {"params": params, "macs_per_clip": macs, "macs_by_part": parts,
                              "task": model.task, "paths": {}}
    log(f"  {params / 1e6:.2f}M params, {macs / 1e9:.3f} GMACs per clip")
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_paths(model, settings, Path(tmp))
        info = cpu_kernels()
        checks = [(example_batch(model, 1, seed=10 + i),) for i in range(settings.agreement_batches)]
        for name, run in paths.items():
            if isinstance(run, str):
                result["paths"][name] = {"error": run}
                log(f"  {name}: ERROR {run}")
                continue
            try:
                entry = measure_path(run, model, macs, ceiling_gflops, settings)
                if name != "eager":
                    entry["agreement"] = vars(fast.output_agreement(model, run, checks))
                entry["kernels"] = path_kernels(name, run, info)
            except Exception as exc:
                entry = {"error": _error(exc)}
            result["paths"][name] = entry
            log("  " + describe_path(name, entry))
    result["train_step"] = train_step(model, settings)
    log(f"  train step batch {settings.train_batch}: {result['train_step']['clips_per_s']:.1f} clips/s")
    if settings.train_rounds > 0:
        result["train_paths"] = bench_train_paths(model, settings, log)
    if settings.memory and memory_recipe is not None:
        result["memory"] = bench_memory(memory_recipe, settings, log)
    return result


def describe_path(name: str, entry: dict[str, Any]) -> str:
    """One log line for a path's measurements."""
    if "error" in entry:
        return f"{name}: ERROR {entry['error']}"
    lat, thr = entry["latency"], entry["throughput"]
    return (f"{name}: b1 {lat['median_ms']:.1f} ms (p95 {lat['p95_ms']:.1f}), b{thr['batch']} "
            f"{thr['clips_per_s']:.1f} clips/s = {thr['gflops']:.1f} GFLOP/s "
            f"({100 * thr['ceiling_fraction']:.0f}% of ceiling)"
            + (f" {kernels_text(entry['kernels'])}" if "kernels" in entry else ""))
