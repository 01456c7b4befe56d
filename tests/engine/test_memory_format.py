"""The engine's training defaults that change speed and must not change results."""

from __future__ import annotations

import copy

import pytest
import torch

from avtoolkit.engine.memory_format import to_channels_last
from avtoolkit.engine.optim import build_optimizer


def _conv_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(2),
                               torch.nn.Unflatten(2, (6, 64)), torch.nn.Conv2d(4, 4, 3, padding=1),
                               torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 64, 3))


def _train(model: torch.nn.Module, steps: int = 5, **optim: object) -> list[float]:
    opt = build_optimizer(model.parameters(), {"name": "adamw", "lr": 1e-2, **optim})
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, 1, 6, 8, 8, generator=gen), torch.tensor([0, 1, 2, 0])
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_channels_last_trains_to_the_same_losses_and_weights():
    plain = _conv_net()
    fast = copy.deepcopy(plain)
    assert to_channels_last(fast) == 2  # the 3-D and the 2-D conv weights; biases and linear stay
    assert fast[0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert _train(fast) == pytest.approx(_train(plain), rel=1e-4, abs=1e-5)
    for (name, a), b in zip(plain.state_dict().items(), fast.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), name
