"""effnetv2_3d: sizes, stem, stochastic depth, BatchNorm momentum, padding invariance."""

import pytest
import torch
from torch import nn

from avtoolkit.models.encoders._effnet_blocks import DropPath, FusedMBConv, MBConv
from avtoolkit.models.encoders.effnetv2 import EfficientNetV2Video

TINY = dict(width=0.25, depth=0.2, head_features=0, output_dim=16)


def test_stem_is_3x5x5_stride_1x2x2_without_max_pool():
    enc = EfficientNetV2Video("t")
    conv = enc.stem[0]
    assert conv.kernel_size == (3, 5, 5) and conv.stride == (1, 2, 2)
    assert not any(isinstance(m, (nn.MaxPool3d, nn.MaxPool2d)) for m in enc.modules())


def test_fused_blocks_come_before_mbconv_with_squeeze_excitation():
    enc = EfficientNetV2Video("s")
    kinds = [type(b).__name__ for b in enc.trunk]
    assert kinds[0] == "FusedMBConv" and kinds[-1] == "MBConv"
    assert kinds.index("MBConv") > kinds.count("FusedMBConv") - 1
    assert all(any(type(m).__name__ == "SqueezeExcite" for m in b.modules()) for b in enc.trunk if isinstance(b, MBConv))


def test_sizes_grow_t_b_s_l():
    counts = {s: sum(p.numel() for p in EfficientNetV2Video(s).parameters()) for s in "tbsl"}
    assert counts["t"] < counts["b"] < counts["s"] < counts["l"]


def test_batchnorm_uses_pytorch_momentum():
    enc = EfficientNetV2Video("t", **TINY)
    moms = {m.momentum for m in enc.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    assert moms == {0.1}


def test_stochastic_depth_is_applied_in_training_only():
    torch.manual_seed(0)
    enc = EfficientNetV2Video("t", width=0.25, depth=0.3, head_features=0, output_dim=8,
                              drop_path_rate=0.9, dropout=0.0)
    assert any(isinstance(m, DropPath) and m.p > 0 for m in enc.modules())
    x, n = torch.randn(2, 2, 1, 24, 24), torch.tensor([2, 2])
    enc.train()
    a, b = enc(x, n)[0], enc(x, n)[0]
    assert not torch.allclose(a, b)  # only drop path is random here (dropout 0)
    enc.eval()
    assert torch.equal(enc(x, n)[0], enc(x, n)[0])
    no_drop = EfficientNetV2Video("t", width=0.25, depth=0.3, head_features=0, output_dim=8,
                                  drop_path_rate=0.0, dropout=0.0).train()
    assert torch.allclose(no_drop(x, n)[0], no_drop(x, n)[0])


def test_padding_does_not_change_a_clip():
    torch.manual_seed(0)
    enc = EfficientNetV2Video("t", **TINY).eval()
    clip = torch.randn(1, 5, 1, 32, 32)
    alone, _ = enc(clip, torch.tensor([5]))
    padded = torch.cat([clip, torch.randn(1, 3, 1, 32, 32)], dim=1)
    out, _ = enc(padded, torch.tensor([5]))
    torch.testing.assert_close(out[:, :5], alone, atol=1e-5, rtol=1e-5)
    assert torch.all(out[:, 5:] == 0)


def test_rgb_input_and_shape_errors():
    enc = EfficientNetV2Video("t", in_channels=3, **TINY)
    y, _ = enc(torch.randn(1, 4, 3, 32, 32), torch.tensor([4]))
    assert y.shape == (1, 4, 16)
    with pytest.raises(ValueError, match="expects video"):
        enc(torch.randn(1, 4, 1, 32, 32), torch.tensor([4]))
    with pytest.raises(ValueError, match="unknown EfficientNetV2 size"):
        EfficientNetV2Video("xl")


def test_fused_block_residual_only_when_shape_kept():
    assert FusedMBConv(16, 16, 3, 1, 4).residual
    assert not FusedMBConv(16, 32, 3, 1, 4).residual and not FusedMBConv(16, 16, 3, 2, 4).residual


def test_depthwise_conv_on_frames_smaller_than_its_kernel_matches_the_padded_conv():
    """Explicit zero padding (the speed fix for 2x2 frames) gives the conv's own values and gradients."""
    import copy

    from avtoolkit.models.encoders._effnet_blocks import DepthwiseConv2d

    torch.manual_seed(0)
    fast = DepthwiseConv2d(8, 8, 3, padding=1, groups=8, bias=False)
    plain = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
    plain.load_state_dict(copy.deepcopy(fast.state_dict()))  # same keys as nn.Conv2d
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(4, 8, 2, 2).contiguous(memory_format=layout).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        y, y2 = fast(x), plain(x2)
        assert torch.allclose(y, y2, atol=1e-6)
        assert y.is_contiguous(memory_format=layout)
        (y * torch.arange(y.numel()).view_as(y)).sum().backward()
        (y2 * torch.arange(y2.numel()).view_as(y2)).sum().backward()
        assert torch.allclose(x.grad, x2.grad, atol=1e-5)
        assert torch.allclose(fast.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-4)
        fast.weight.grad = plain.weight.grad = None


def test_training_stem_per_frame_matches_the_3d_stem_with_batch_statistics():
    """The training route of the stem (per-frame conv2d + norm over frames) is the 3D conv + BatchNorm3d."""
    import copy

    from avtoolkit.models.encoders.effnetv2 import _stem_per_frame

    torch.manual_seed(0)
    stem = EfficientNetV2Video("t", width=0.25, depth=0.2, head_features=0, output_dim=16).stem.train()
    ref = copy.deepcopy(stem)
    x = torch.randn(2, 5, 1, 20, 20)
    mask = torch.ones(2, 5, dtype=torch.bool)
    frames = _stem_per_frame(stem, x, mask, fold=False)
    expected = ref(x.transpose(1, 2)).transpose(1, 2).flatten(0, 1)
    assert frames.shape == expected.shape
    assert torch.allclose(frames, expected, atol=1e-5)
    assert torch.allclose(stem[1].running_mean, ref[1].running_mean, atol=1e-6)
    assert torch.allclose(stem[1].running_var, ref[1].running_var, atol=1e-6)
    frames.square().sum().backward()
    expected.square().sum().backward()
    assert torch.allclose(stem[0].weight.grad, ref[0].weight.grad, rtol=1e-4, atol=1e-3)
