"""The inference route (folded BatchNorm, per-frame stem, GEMM squeeze-excite) gives the layers' values."""

import pytest
import torch
from torch import nn

from avtoolkit.models.encoders.effnetv2 import EfficientNetV2Video
from avtoolkit.models.folding import ConvNormAct, set_fast_inference


def _random_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Norms as after training: running statistics and affine parameters far from 0 / 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    return model


def _both_routes(model: nn.Module, *args: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        set_fast_inference(model, True)
        fast = model(*args)
        set_fast_inference(model, False)
        plain = model(*args)
        set_fast_inference(model, True)
    first = (lambda y: y[0] if isinstance(y, tuple) else y)
    return first(fast), first(plain)


@pytest.mark.parametrize("conv", [nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.Conv2d(4, 4, 3, padding=1, groups=4),
                                  nn.Conv3d(1, 8, (3, 5, 5), (1, 2, 2), (1, 2, 2), bias=False)])
def test_folded_conv_norm_act_equals_the_layers_as_written(conv):
    norm = (nn.BatchNorm3d if isinstance(conv, nn.Conv3d) else nn.BatchNorm2d)(conv.out_channels)
    block = _random_statistics(ConvNormAct(conv, norm, nn.SiLU())).eval()
    x = torch.randn(2, conv.in_channels, *([4] if isinstance(conv, nn.Conv3d) else []), 12, 12)
    fast, plain = _both_routes(block, x)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    assert (fast - plain).abs().max() < 1e-5 < (plain - conv(x).detach()).abs().max()  # the norm did act


def test_training_and_gradients_run_the_layers_as_written():
    block = _random_statistics(ConvNormAct(nn.Conv2d(3, 4, 1, bias=False), nn.BatchNorm2d(4))).eval()
    x = torch.randn(2, 3, 5, 5)
    block(x).sum().backward()  # evaluation with autograd: the norm's parameters get gradients
    assert block[1].weight.grad is not None and block[1].weight.grad.abs().sum() > 0
    block.train()
    before = block[1].running_mean.clone()
    with torch.no_grad():
        block(x)
    assert not torch.equal(block[1].running_mean, before)  # batch statistics were used and tracked


def test_changed_weights_are_never_served_from_the_cache():
    block = _random_statistics(ConvNormAct(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))).eval()
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        first = block(x)
        block[0].weight.mul_(2)  # an in-place update (what optimisers and copy_ do)
        second = block(x)
        other = _random_statistics(ConvNormAct(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4)), seed=3)
        block.load_state_dict(other.state_dict())  # an EMA swap / a checkpoint
        third = block(x)
        block[1].running_var.data.mul_(4)  # invisible to version counters: eval() refreshes
        block.eval()
        fourth = block(x)
        set_fast_inference(block, False)
        reference = block(x)
    assert not torch.allclose(first, second) and not torch.allclose(second, third)
    torch.testing.assert_close(fourth, reference, atol=1e-5, rtol=1e-5)


def _calibrated(model: nn.Module, *args: torch.Tensor) -> nn.Module:
    """Running statistics of the model's own activations (as after training), then affine noise.

    Random statistics alone would not do: a deep random net's activations shrink layer by
    layer and its output hardly depends on its input, so no route difference would show.
    """
    gen = torch.Generator().manual_seed(1)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.train()
    with torch.no_grad():
        for m in norms:
            m.momentum = 1.0  # running statistics := this batch's
            m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
        model(*args)
        for m in norms:
            m.momentum = 0.1
    return model.eval()


@pytest.mark.parametrize("lengths,channels", [([6, 6], 1), ([6, 3], 1), ([6, 4], 3)])
def test_effnetv2_inference_route_gives_the_encoders_features(lengths, channels):
    torch.manual_seed(0)
    enc = EfficientNetV2Video("t", in_channels=channels, width=0.25, depth=0.3, head_features=32, output_dim=16)
    x, n = torch.randn(2, 6, channels, 32, 32), torch.tensor(lengths)
    fast, plain = _both_routes(_calibrated(enc, x, n), x, n)
    torch.testing.assert_close(fast, plain, atol=1e-4, rtol=1e-4)
    assert plain[0].std(0).mean() > 0.05  # the features depend on the frames (a route error would show)
    assert torch.all(fast[1, lengths[1]:] == 0)  # padded frames stay zero
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast16, plain16 = _both_routes(enc, x, n)

    def error(y: torch.Tensor) -> float:  # relative to the fp32 features
        return float((y.float() - plain).norm() / plain.norm())

    # bf16 keeps 8 bits of mantissa (this small random net amplifies it to 5-25% of the
    # features on either route): the inference route may round differently, not worse.
    assert error(fast16) < 2 * error(plain16)


def test_state_dict_keys_are_those_of_the_plain_layers():
    """Checkpoints written before the inference route load unchanged."""
    enc = EfficientNetV2Video("t", width=0.25, depth=0.2, head_features=32, output_dim=16)
    keys = set(enc.state_dict())
    assert {"stem.0.weight", "stem.1.running_var", "frame_stem.0.weight", "frame_stem.1.bias",
            "head_conv.0.weight", "head_conv.1.running_mean", "trunk.0.body.0.weight"} <= keys
    assert not any("cache" in k for k in keys)
