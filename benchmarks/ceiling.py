"""The machine's own ceiling: fp32 matrix-multiply GFLOP/s, the unit every model figure is read in."""

from __future__ import annotations

import torch

from benchmarks._timing import time_calls


def matmul_ceiling(size: int = 2048, runs: int = 10) -> dict[str, float]:
    """fp32 ``size x size`` matmul throughput on the current ``torch`` thread count.

    The best of ``runs`` calls, not the median: the ceiling is what the cores can do, and
    other processes on a shared machine only ever make a call slower.

    Args:
        size: matrix side (2048: large enough for MKL's peak, small enough to stay in cache tiles).
        runs: timed calls.

    Returns:
        ``{"gflops": best, "gflops_median": median, "size": size, "threads": n}``.
    """
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    times = sorted(time_calls(lambda: torch.mm(a, b), runs=runs, warmup=2))
    flops = 2.0 * size**3
    return {"gflops": flops / times[0] / 1e9, "gflops_median": flops / times[len(times) // 2] / 1e9,
            "size": size, "threads": torch.get_num_threads()}
