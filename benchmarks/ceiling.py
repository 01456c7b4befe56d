"""The machine's own ceilings: matrix-multiply throughput per number format.

Every model figure is read against the ceiling of the format it computes in: an fp32 path
against fp32 matmul, a bf16 path against bf16 matmul, an int8 path against int8 matmul.
Reading a bf16 path against the fp32 ceiling gave "101% of ceiling", a number that hides
how far the path is from what bf16 can do.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from benchmarks._timing import time_calls

#: the ceiling each inference path is read against (anything not listed computes in fp32;
#: ``fast_fp32+int8_linear`` too: its convolutions, nearly all of its MACs, stay fp32)
PATH_FORMAT = {"fast_bf16": "bf16", "eager_bf16": "bf16", "eager_bf16_before": "bf16", "onnxruntime_int8": "int8"}


def path_format(path: str) -> str:
    """The number format an inference path computes in.

    Examples:
        >>> path_format("fast_bf16"), path_format("onnxruntime_int8"), path_format("eager")
        ('bf16', 'int8', 'fp32')
    """
    return PATH_FORMAT.get(path, "fp32")


def _best(fn: Callable[[], Any], flops: float, runs: int) -> dict[str, float]:
    # The best call, not the median: the ceiling is what the cores can do, and other
    # processes on a shared machine only ever make a call slower.
    times = sorted(time_calls(fn, runs=runs, warmup=2))
    return {"gflops": flops / times[0] / 1e9, "gflops_median": flops / times[len(times) // 2] / 1e9}


def matmul_ceiling(size: int = 2048, runs: int = 10, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """``size x size`` matmul throughput in ``dtype`` on the current ``torch`` thread count.

    Args:
        size: matrix side (2048: large enough for MKL's/oneDNN's peak, small enough to stay in cache tiles).
        runs: timed calls.
        dtype: ``torch.float32`` or ``torch.bfloat16``.

    Returns:
        ``{"gflops": best, "gflops_median": median, "size": size, "threads": n}``.
    """
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    return {**_best(lambda: torch.mm(a, b), 2.0 * size**3, runs), "size": size, "threads": torch.get_num_threads()}


def int8_ceiling(size: int = 2048, runs: int = 10, threads: int | None = None) -> dict[str, Any]:
    """uint8 x int8 -> int32 matmul throughput (GOP/s) in ONNX Runtime's ``MatMulInteger``.

    ONNX Runtime, not ``torch._int_mm``: it is the kernel the int8 path runs (VNNI on CPUs
    that have it), and torch's CPU int8 matmul is not tuned (here it ran at a fraction of
    its fp32 matmul).

    Returns:
        ``{"gflops": best, "gflops_median": median, "size", "threads", "kernel"}``.
    """
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "int8_matmul",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size]),
         helper.make_tensor_value_info("B", TensorProto.INT8, [size, size])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"A": rng.integers(0, 256, (size, size), dtype=np.uint8),
             "B": rng.integers(-128, 128, (size, size), dtype=np.int8)}
    return {**_best(lambda: session.run(None, feeds), 2.0 * size**3, runs), "size": size,
            "threads": options.intra_op_num_threads, "kernel": "onnxruntime MatMulInteger"}


def cpu_flags() -> list[str]:
    """The CPU's low-precision instruction sets that decide which formats are native."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return sorted(set(flags) & {"avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile",
                                "avx512f", "avx2"})


def ceilings(runs: int = 10, size: int = 2048) -> dict[str, Any]:
    """One ceiling per number format: fp32, bf16 (native hardware only) and int8.

    Returns:
        ``{"fp32": {...}, "bf16": {...} or {"skipped": why}, "int8": {...}, "cpu_flags": [...]}``.
    """
    from benchmarks.fast_paths import bf16_supported

    out: dict[str, Any] = {"fp32": matmul_ceiling(size, runs), "cpu_flags": cpu_flags()}
    out["bf16"] = (matmul_ceiling(size, runs, torch.bfloat16) if bf16_supported()
                   else {"skipped": "no native bf16 on this CPU (emulated bf16 is slower than fp32)"})
    try:
        out["int8"] = int8_ceiling(size, runs)
    except Exception as exc:  # onnx missing or the kernel unavailable: the other formats still count
        out["int8"] = {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
    return out
