"""Optimizers and learning-rate schedules from the recipe's ``optim`` and ``schedule`` sections."""

from __future__ import annotations

import math
import typing
from typing import Any, Iterable, Mapping

import torch

from avtoolkit.recipe import RecipeError
from avtoolkit.recipe.schema import OptimConfig, ScheduleConfig, section

OPTIMIZERS = typing.get_args(typing.get_type_hints(OptimConfig)["name"])
SCHEDULES = typing.get_args(typing.get_type_hints(ScheduleConfig)["name"])


class WarmupCosine:
    """LR factor per optimizer step: linear warm-up to 1, then cosine down to ``min_ratio``.

    The warm-up reaches exactly 1 on its last step and the cosine starts at 1 on the next,
    so the rate is continuous there (the public code behind the LRW seed restarted its
    schedule at the boundary and jumped to about twice the base rate). A plain object with
    float attributes, so ``LambdaLR.state_dict()`` saves it in a weights-only checkpoint.

    Args:
        warmup_steps: optimizer steps of linear warm-up (0: none).
        total_steps: optimizer steps of the whole run.
        min_ratio: final rate as a fraction of the base rate.

    Examples:
        >>> f = WarmupCosine(warmup_steps=4, total_steps=12)
        >>> [round(f(s), 3) for s in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 0.962]
        >>> round(f(11), 3), f(50)
        (0.038, 0.0)
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> None:
        self.warmup_steps = int(max(0, warmup_steps))
        self.total_steps = int(max(total_steps, self.warmup_steps + 1))
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        # step == warmup_steps is the first cosine step and gives exactly 1.
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _fused_ok(params: list[torch.nn.Parameter]) -> bool:
    """Whether to use torch's fused Adam/AdamW kernel: every parameter floating and on CUDA.

    Not on CPU: measured in one run beside the for-loop (benchmarks/training.py), fused AdamW
    made the lrw_effv2t and avasr training steps no faster (0.99x, 0.92x; the update is a
    small part of a CPU step).
    """
    return bool(params) and all(p.is_floating_point() and p.device.type == "cuda" for p in params)


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """AdamW, Adam or SGD with weight decay from an ``optim`` section.

    On CUDA, Adam and AdamW use torch's fused kernel (one pass over all parameters instead
    of many small kernels); the update is the same algorithm.

    Raises:
        RecipeError: unknown optimizer name (``optim.name``).

    Examples:
        >>> opt = build_optimizer([torch.nn.Parameter(torch.zeros(2))], {"name": "adamw"})
        >>> opt.defaults["fused"] is None  # CPU parameters: torch's own default
        True
    """
    params = list(params)
    c = section(OptimConfig, cfg)
    name = str(c.name).lower()
    lr = float(c.lr)
    wd = float(c.weight_decay)
    betas = tuple(c.betas)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=betas,  # type: ignore[arg-type]
                                 fused=_fused_ok(params) or None)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, betas=betas,  # type: ignore[arg-type]
                                fused=_fused_ok(params) or None)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=float(c.momentum),
                               nesterov=bool(c.nesterov))
    raise RecipeError(f"optim.name: unknown optimizer '{name}'; choose one of {', '.join(OPTIMIZERS)}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], *, total_steps: int,
                    steps_per_epoch: float, monitor: str, monitor_mode: str) -> dict[str, Any] | None:
    """The Lightning ``lr_scheduler`` config for a ``schedule`` section, or ``None`` (constant).

    ``cosine`` steps once per optimizer step; ``plateau`` once per epoch on ``monitor``.

    Raises:
        RecipeError: unknown schedule name (``schedule.name``).
    """
    c = section(ScheduleConfig, cfg)
    name = str(c.name).lower()
    if name == "constant":
        return None
    if name == "cosine":
        base_lr = optimizer.param_groups[0]["lr"]
        min_ratio = float(c.min_lr) / base_lr if base_lr > 0 else 0.0
        warmup = int(round(float(c.warmup_epochs) * steps_per_epoch))
        fn = WarmupCosine(warmup, total_steps, min_ratio)
        return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, fn), "interval": "step", "frequency": 1}
    if name == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=monitor_mode, factor=float(c.factor),
            patience=int(c.patience), min_lr=float(c.min_lr))
        return {"scheduler": plateau, "interval": "epoch", "frequency": 1, "monitor": monitor, "strict": True}
    raise RecipeError(f"schedule.name: unknown schedule '{name}'; choose one of {', '.join(SCHEDULES)}")
