"""Learning-rate schedules: continuous warm-up to cosine, per-step, plateau."""

from __future__ import annotations

import pytest
import torch

from avtoolkit.engine.optim import WarmupCosine, build_optimizer, build_scheduler
from avtoolkit.recipe import RecipeError


def _lrs(schedule: dict, steps: int, base_lr: float = 0.1, steps_per_epoch: int = 10) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([param], {"name": "sgd", "lr": base_lr})
    cfg = build_scheduler(opt, schedule, total_steps=steps, steps_per_epoch=steps_per_epoch,
                          monitor="val/acc", monitor_mode="max")
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        param.grad = torch.zeros(1)
        opt.step()
        cfg["scheduler"].step()
    return lrs


def test_warmup_then_cosine_is_continuous_and_never_exceeds_base_lr():
    lrs = _lrs({"name": "cosine", "warmup_epochs": 3}, steps=100)
    warmup = 30
    assert max(lrs) <= 0.1 + 1e-12  # the seed's code reached ~2x here
    assert lrs[warmup - 1] == pytest.approx(0.1) and lrs[warmup] == pytest.approx(0.1)
    steps = [abs(b - a) for a, b in zip(lrs, lrs[1:])]
    assert max(steps) <= 0.1 / warmup + 1e-9  # no jump anywhere, warm-up increments are the largest
    assert lrs[0] == pytest.approx(0.1 / warmup)
    assert all(b <= a for a, b in zip(lrs[warmup:], lrs[warmup + 1:]))  # cosine only decays
    assert lrs[-1] < 0.001


def test_min_lr_is_the_floor():
    lrs = _lrs({"name": "cosine", "warmup_epochs": 0, "min_lr": 0.01}, steps=50)
    assert lrs[0] == pytest.approx(0.1) and min(lrs) >= 0.01 - 1e-12 and lrs[-1] == pytest.approx(0.01, abs=1e-3)


def test_warmup_cosine_survives_state_dict_round_trip():
    fn = WarmupCosine(5, 50, 0.1)
    param = torch.nn.Parameter(torch.zeros(1))
    sched = torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([param], lr=1.0), fn)
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"warmup_steps": 5, "total_steps": 50, "min_ratio": 0.1}]


def test_plateau_halves_on_stalled_metric_and_constant_has_no_scheduler():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([param], {"name": "adam", "lr": 1.0, "weight_decay": 0.0})
    cfg = build_scheduler(opt, {"name": "plateau", "patience": 0, "factor": 0.5}, total_steps=10,
                          steps_per_epoch=1, monitor="val/wer", monitor_mode="min")
    assert cfg["monitor"] == "val/wer" and cfg["interval"] == "epoch"
    for wer in (0.5, 0.6):
        cfg["scheduler"].step(wer)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    assert build_scheduler(opt, {"name": "constant"}, total_steps=1, steps_per_epoch=1,
                           monitor="val/wer", monitor_mode="min") is None


def test_unknown_names_name_the_recipe_key():
    with pytest.raises(RecipeError, match="optim.name"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], {"name": "lamb"})
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], {"name": "adamw"})
    with pytest.raises(RecipeError, match="schedule.name"):
        build_scheduler(opt, {"name": "step"}, total_steps=1, steps_per_epoch=1, monitor="m", monitor_mode="min")
