"""Where the time goes: per-layer-kind wall time (module hooks) and the top ops (torch.profiler)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable

import torch
from torch import nn


def layer_kind(module: nn.Module, parent: nn.Module | None) -> str:
    """A label a reader can act on: ``conv3x3 depthwise``, ``conv1x1 (squeeze-excite)``...

    Examples:
        >>> layer_kind(nn.Conv2d(8, 8, 3, groups=8), None)
        'Conv2d 3x3 depthwise'
    """
    kind = type(module).__name__
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        kind += " " + "x".join(str(k) for k in module.kernel_size)
        if module.groups > 1 and module.groups == module.in_channels:
            kind += " depthwise"
    if parent is not None and "excit" in type(parent).__name__.lower():
        kind += " (squeeze-excite)"
    return kind


def time_by_layer_kind(model: nn.Module, run: Callable[[], Any], repeats: int = 3,
                       clock: Callable[[], float] = time.perf_counter) -> list[tuple[str, float]]:
    """Milliseconds per call spent in each kind of leaf module, largest first.

    Module hooks, not ``torch.profiler``: the profiler reports aten ops, which cannot tell a
    squeeze-excite 1x1 conv from any other.

    ``clock=time.process_time`` counts CPU time instead of wall time: on a machine shared
    with other work, that keeps the split meaningful (it sums over threads).

    Hooks time leaf modules only (and modules marked ``profile_as_leaf``, such as the fast
    path's GEMM-backed temporal conv), so nothing is counted twice; what is not inside a leaf
    module (reshapes, masking, functional ops in ``forward``) shows as ``(outside leaf modules)``.
    """
    parents = {child: parent for parent in model.modules() for child in parent.children()}
    totals: dict[str, float] = defaultdict(float)
    starts: dict[int, float] = {}
    handles = []
    inside_leaf = {id(m) for top in model.modules() if getattr(top, "profile_as_leaf", False)
                   for m in top.modules() if m is not top}
    for module in model.modules():
        is_leaf = next(module.children(), None) is None or getattr(module, "profile_as_leaf", False)
        if not is_leaf or id(module) in inside_leaf:
            continue
        kind = layer_kind(module, parents.get(module))

        def before(mod: nn.Module, _args: Any) -> None:
            starts[id(mod)] = clock()

        def after(mod: nn.Module, _args: Any, _out: Any, kind: str = kind) -> None:
            totals[kind] += clock() - starts.pop(id(mod))

        handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    try:
        with torch.inference_mode():
            run()  # warm-up, not counted
            totals.clear()
            start = clock()
            for _ in range(repeats):
                run()
            wall = clock() - start
    finally:
        for handle in handles:
            handle.remove()
    rows = sorted(((k, 1e3 * v / repeats) for k, v in totals.items()), key=lambda r: -r[1])
    rows.append(("(outside leaf modules)", 1e3 * (wall - sum(totals.values())) / repeats))
    return rows


def top_ops(run: Callable[[], Any], limit: int = 10, grad: bool = False) -> list[tuple[str, float, int]]:
    """The ``limit`` aten ops with the most self CPU time: ``(name, ms per call, calls)``.

    ``grad=True`` profiles ``run`` with autograd on (a training step: its backward ops show
    as ``...Backward`` / ``convolution_backward``).
    """
    import contextlib

    from torch.profiler import ProfilerActivity, profile

    with contextlib.nullcontext() if grad else torch.inference_mode():
        run()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:limit]
    return [(e.key, e.self_cpu_time_total / 1e3, e.count) for e in events]


def profile_report(model: nn.Module, run: Callable[[], Any]) -> dict[str, Any]:
    """Both views, as JSON-ready lists."""
    return {"by_layer_kind_ms": [[k, round(v, 2)] for k, v in time_by_layer_kind(model, run)[:12]],
            "top_ops_ms": [[k, round(v, 2), n] for k, v, n in top_ops(run)]}
