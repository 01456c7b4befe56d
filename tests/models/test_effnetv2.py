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
