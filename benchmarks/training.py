"""Training steps side by side: today's fp32 step against bf16 autocast, channels-last, fused AdamW.

Each path is one full optimizer step as the engine runs it: forward, loss, backward and
AdamW. The paths are timed in alternating blocks (A B C A B C ...) in one process, so a
burst of load from another process on a shared machine slows every path alike and the
ratios stay readable even when the absolute times do not.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

#: the path every other one is read against: the engine's step before issue 15
#: (``trainer.precision: 32``, AdamW's per-parameter for-loop on CPU)
BASELINE = "fp32 (before)"


@dataclass(frozen=True)
class TrainPath:
    """One way of running a training step."""

    name: str
    bf16: bool = False
    channels_last: bool = False
    #: AdamW implementation: ``"for-loop"`` (torch's CPU default), ``"foreach"`` or ``"fused"``
    adamw: str = "for-loop"
    compile: bool = False


def train_paths(bf16: bool, compile_: bool = False) -> list[TrainPath]:
    """The paths to compare; bf16 ones only where the hardware has native bf16."""
    paths = [TrainPath(BASELINE), TrainPath("fp32+fused_adamw", adamw="fused"),
             TrainPath("fp32+channels_last+fused_adamw", channels_last=True, adamw="fused")]
    if bf16:
        paths += [TrainPath("bf16", bf16=True),
                  TrainPath("bf16+fused_adamw", bf16=True, adamw="fused"),
                  TrainPath("bf16+channels_last+fused_adamw", bf16=True, channels_last=True, adamw="fused")]
    if compile_:
        paths.append(TrainPath("bf16+fused_adamw+compile" if bf16 else "fp32+fused_adamw+compile",
                               bf16=bf16, adamw="fused", compile=True))
    return paths


def make_step(model: nn.Module, path: TrainPath, batch: dict[str, torch.Tensor],
              loss_fn: Callable[[nn.Module, dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor]
              ) -> Callable[[], float]:
    """A closure running one optimizer step of a private copy of ``model`` on ``batch``."""
    from avtoolkit.engine.memory_format import to_channels_last

    model = copy.deepcopy(model).train()
    if path.channels_last:
        to_channels_last(model)  # the engine's own conversion, in place: the copy stays in training mode
    kwargs: dict[str, Any] = {"foreach": False} if path.adamw == "for-loop" else {path.adamw: True}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **kwargs)
    forward = torch.compile(model) if path.compile else model

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=path.bf16):
            out = forward(batch)
        loss = loss_fn(model, out, batch)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def time_alternating(steps: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call of each step, timed round-robin ``rounds`` times after ``warmup`` calls each.

    ``clock=time.process_time`` counts this process's CPU time (summed over its threads):
    on a machine shared with other work, time spent waiting for a core is not counted.

    Examples:
        >>> t = time_alternating({"a": lambda: None, "b": lambda: None}, rounds=2, warmup=0)
        >>> sorted(t), len(t["a"])
        (['a', 'b'], 2)
    """
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def bench_training(model: nn.Module, batch: dict[str, torch.Tensor],
                   loss_fn: Callable[[nn.Module, dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor],
                   paths: list[TrainPath], rounds: int, warmup: int = 1) -> dict[str, Any]:
    """Clips/s, ms per step and speed-up over :data:`BASELINE` of each path (errors recorded).

    Returns:
        ``{path: {"batch", "cpu_ms_per_step", "clips_per_cpu_s", "speedup"}}`` or ``{path: {"error": ...}}``.
    """
    size = next(v.shape[0] for v in batch.values() if isinstance(v, torch.Tensor))
    steps: dict[str, Callable[[], Any]] = {}
    result: dict[str, Any] = {}
    for path in paths:
        try:
            steps[path.name] = make_step(model, path, batch, loss_fn)
        except Exception as exc:  # a path that cannot be built is reported; the others run
            result[path.name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        times = time_alternating(steps, rounds, warmup, clock=time.process_time)
    except Exception as exc:  # e.g. compile failing at the first call: drop that path, time the rest
        return {**result, **{name: {"error": f"{type(exc).__name__}: {exc}"[:300]} for name in steps}}
    # Ratios of CPU time: a step's CPU seconds do not grow while it waits for a core held
    # by another process, its wall seconds do. clips/s are per CPU-second of this process's
    # threads, so on an idle machine with ``threads`` cores the wall-clock rate is about
    # ``threads`` times that.
    base = statistics.median(times[BASELINE]) if BASELINE in times else None
    for name, t in times.items():
        median = statistics.median(t)
        result[name] = {"batch": size, "cpu_ms_per_step": 1e3 * median, "clips_per_cpu_s": size / median,
                        "speedup": base / median if base else None}
    return result
