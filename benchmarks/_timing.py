"""Wall-clock timing helpers shared by the benchmark sections."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def time_calls(fn: Callable[[], Any], runs: int, warmup: int = 3, min_seconds: float = 0.0) -> list[float]:
    """Seconds per call of ``fn`` over ``runs`` timed calls after ``warmup`` untimed ones.

    Not ``torch.utils.benchmark.Timer``: it reports blocks of calls, and the reports need
    each call's time (median and p95 of single calls).

    Args:
        fn: the work to time (called with no arguments).
        runs: timed calls (at least this many).
        warmup: untimed calls first: oneDNN picks kernels and allocators warm up on them.
        min_seconds: keep calling past ``runs`` until this much time was measured.

    Returns:
        The per-call durations in seconds, in call order.

    Examples:
        >>> len(time_calls(lambda: None, runs=5, warmup=0))
        5
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < runs or sum(times) < min_seconds:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation.

    Examples:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
        2.5
    """
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_ms(times: list[float]) -> dict[str, float]:
    """Median and 95th percentile of per-call times, in milliseconds."""
    return {"median_ms": 1e3 * statistics.median(times), "p95_ms": 1e3 * percentile(times, 95),
            "runs": len(times)}
