"""Peak resident memory of one inference or training path, measured in a fresh process.

Each measurement runs in its own child process (``python -m benchmarks.memory ...``), so
what the parent allocated before (other recipes, other paths) cannot count, and the kernel's
high-water mark (``ru_maxrss``) is the path's own. ``tracemalloc`` would miss torch's
allocations, which are not Python objects.

Before the run the child resets the kernel's high-water mark (``/proc/self/clear_refs``,
Linux): imports and model construction have transient peaks of their own (hundreds of MiB,
more than a small model's run), and without the reset they would be reported as the path's.
Where the reset is not possible the peak is the whole process's (``ru_maxrss``).

The child reports two figures: ``peak_mib``, the peak resident memory during the run (what
a machine must have: Python, torch, the model and the run), and ``run_mib``, how far the run
raised it above the resident memory after the model and inputs were built (what the path
itself needs on top; batch size moves this one).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))


def _status_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_mib() -> float:
    """Current resident memory (Linux ``/proc``), else the peak so far."""
    rss = _status_mib("VmRSS")
    return _peak_mib() if rss is None else rss


def _reset_peak() -> bool:
    """Resets the kernel's peak-RSS mark of this process; False where the kernel has no such file."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    hwm = _status_mib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def measure_here(recipe: Path, path: str, batch: int, threads: int) -> dict[str, float]:
    """In this process: build the recipe model, run ``path`` once at ``batch``, report memory.

    ``path``: ``eager`` or ``fast_bf16`` (inference), ``train_fp32`` or ``train_bf16``
    (one AdamW step; ``train_bf16`` adds channels-last and fused AdamW, the fast path).
    """
    import torch

    from avtoolkit import build_model
    from benchmarks import fast_paths as fast
    from benchmarks import models as model_bench
    from benchmarks import training

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    inputs = model_bench.example_batch(model, batch)
    if path.startswith("train_"):
        spec = (training.TrainPath(training.BASELINE) if path == "train_fp32" else
                training.TrainPath("bf16", bf16=True, channels_last=True, adamw="fused"))
        step = training.make_step(model, spec, inputs, model_bench._loss)
        del model  # make_step trains a copy
        before, reset = _rss_mib(), _reset_peak()
        step()
        step()  # the second step holds the optimizer's moments as well
    else:
        run = model
        if path == "fast_bf16":
            run = fast.BFloat16Model(fast.optimize_for_cpu(model, (model_bench.example_batch(model, 1),)))
        elif path != "eager":
            raise ValueError(f"unknown path {path!r}")
        before, reset = _rss_mib(), _reset_peak()
        with torch.inference_mode():
            run(inputs)
    peak = _peak_mib()
    return {"peak_mib": peak, "run_mib": max(0.0, peak - before), "batch": batch, "peak_of": "run" if reset else "process"}


def measure(recipe: Path, path: str, batch: int, threads: int = 2, timeout: float = 600) -> dict[str, Any]:
    """:func:`measure_here` in a child process; ``{"error": ...}`` when it fails."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(recipe), path, str(batch),
                           "--threads", str(threads)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("path", choices=["eager", "fast_bf16", "train_fp32", "train_bf16"])
    parser.add_argument("batch", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(measure_here(args.recipe, args.path, args.batch, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
