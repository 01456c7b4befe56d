"""EfficientNetV2 building blocks: Fused-MBConv, MBConv with squeeze-excitation, stochastic depth.

Layouts follow the EfficientNetV2 paper (Tan & Le, 2021) and timm's ``_efficientnet_blocks``:
batch norm after every convolution, SiLU activations, squeeze-excitation reduced to a quarter
of the *block input* channels, residual only when shape is kept. BatchNorm keeps PyTorch's
momentum semantics (``momentum=0.1`` weights the new batch), not TensorFlow's 0.99.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from avtoolkit.models.folding import ConvNormAct, FastInference


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Rounds a scaled width to a multiple of ``divisor``, never losing more than 10%.

    Examples:
        >>> make_divisible(24 * 0.8)
        24
        >>> make_divisible(1280 * 0.5)
        640
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:  # same guard as the reference implementations
        rounded += divisor
    return rounded


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch per sample with probability ``p`` in training.

    The kept branches are scaled by ``1 / (1 - p)`` so evaluation needs no rescaling.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class DepthwiseConv2d(nn.Conv2d):
    """A grouped ``Conv2d`` that zero-pads explicitly when a frame is smaller than the kernel.

    Same parameters and ``state_dict`` keys as ``nn.Conv2d``, same values up to float rounding:
    the zeros the convolution would pad with are written out first and the convolution runs
    unpadded. Why: oneDNN's depthwise weight-gradient kernel is slow when the padding covers
    more than the frame (EfficientNetV2-T's last stage, 3x3 kernels on 2x2 frames): measured
    one thread, channels-last, ``[232, 768, 2, 2]`` forward + backward 82 ms as written, 15 ms
    padded first; it was a quarter of ``lrw_effv2t``'s training step (benchmarks/seed_compare.py).
    Frames at least the kernel's size run the convolution as written (faster there).

    Examples:
        >>> conv = DepthwiseConv2d(4, 4, 3, padding=1, groups=4)
        >>> x = torch.randn(2, 4, 2, 2)
        >>> bool(torch.allclose(conv(x), nn.Conv2d.forward(conv, x), atol=1e-6))
        True
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        kh, kw = self.kernel_size
        ph, pw = self.padding if isinstance(self.padding, tuple) else (0, 0)  # "same"/"valid" strings: as written
        if self.padding_mode == "zeros" and (ph or pw) and (input.shape[-2] < kh or input.shape[-1] < kw):
            if input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
                # Pad the [N, H, W, C] view: padding a channels-last tensor as NCHW fills the
                # zeros element by element (it cost more than the convolution it saved).
                padded = functional.pad(input.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph)).permute(0, 3, 1, 2)
            else:
                padded = functional.pad(input, (pw, pw, ph, ph))
            return functional.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return super()._conv_forward(input, weight, bias)


class ConvBnAct(ConvNormAct):
    """``Conv2d -> BatchNorm2d -> SiLU`` (activation optional), "same" padding.

    Evaluation without autograd folds the norm into the conv (:class:`ConvNormAct`).
    Depthwise (grouped) convolutions are :class:`DepthwiseConv2d`.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 groups: int = 1, act: bool = True, bn_momentum: float = 0.1) -> None:
        conv_type = DepthwiseConv2d if groups > 1 else nn.Conv2d
        super().__init__(conv_type(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_ch, momentum=bn_momentum),
                         nn.SiLU(inplace=True) if act else None)


class SqueezeExcite(FastInference, nn.Module):
    """Channel gating from globally pooled features (reduced width ``rd_ch``)."""

    def __init__(self, ch: int, rd_ch: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(ch, rd_ch, 1)
        self.expand = nn.Conv2d(rd_ch, ch, 1)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.inference_call():
            # 1x1 convs on pooled [N, C, 1, 1] features are matrix products: as GEMMs they
            # skip oneDNN's per-call convolution set-up (~0.1 ms each, 44 per lrw_effv2t clip).
            s = x.mean((2, 3))
            s = self.act(functional.linear(s, self.reduce.weight.flatten(1), self.reduce.bias))
            gate = torch.sigmoid(functional.linear(s, self.expand.weight.flatten(1), self.expand.bias))
            return x * gate[:, :, None, None]
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))


class FusedMBConv(nn.Module):
    """Fused-MBConv: one full ``k x k`` conv expands (or maps directly when ``expand == 1``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: float,
                 drop_path: float = 0.0, bn_momentum: float = 0.1) -> None:
        super().__init__()
        mid = make_divisible(in_ch * expand)
        if expand == 1:
            self.body = ConvBnAct(in_ch, out_ch, kernel, stride, bn_momentum=bn_momentum)
        else:
            self.body = nn.Sequential(
                ConvBnAct(in_ch, mid, kernel, stride, bn_momentum=bn_momentum),
                ConvBnAct(mid, out_ch, 1, act=False, bn_momentum=bn_momentum),
            )
        self.residual = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + self.drop_path(y) if self.residual else y


class MBConv(nn.Module):
    """MBConv: 1x1 expansion, depthwise ``k x k``, squeeze-excitation, 1x1 projection."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: float,
                 se_ratio: float = 0.25, drop_path: float = 0.0, bn_momentum: float = 0.1) -> None:
        super().__init__()
        mid = make_divisible(in_ch * expand)
        layers: list[nn.Module] = [
            ConvBnAct(in_ch, mid, 1, bn_momentum=bn_momentum),
            ConvBnAct(mid, mid, kernel, stride, groups=mid, bn_momentum=bn_momentum),
        ]
        if se_ratio > 0:
            layers.append(SqueezeExcite(mid, max(1, int(in_ch * se_ratio))))
        layers.append(ConvBnAct(mid, out_ch, 1, act=False, bn_momentum=bn_momentum))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = self.body(x)
        return x + self.drop_path(y) if self.residual else y


@dataclass(frozen=True)
class Stage:
    """One row of an EfficientNetV2 stage table."""

    fused: bool
    expand: float
    kernel: int
    stride: int
    channels: int
    layers: int
    se_ratio: float = 0.0


def build_trunk(stages: list[Stage], in_ch: int, width: float, depth: float,
                drop_path_rate: float, bn_momentum: float) -> tuple[nn.Sequential, int]:
    """Stacks the stage table's blocks; drop-path probability grows linearly with block index.

    Returns:
        The trunk and its output channels.
    """
    import math

    repeats = [int(math.ceil(s.layers * depth)) for s in stages]
    total = sum(repeats)
    blocks: list[nn.Module] = []
    index = 0
    ch = in_ch
    for stage, n in zip(stages, repeats):
        out_ch = make_divisible(stage.channels * width)
        for i in range(n):
            stride = stage.stride if i == 0 else 1
            p = drop_path_rate * index / max(1, total)
            if stage.fused:
                blocks.append(FusedMBConv(ch, out_ch, stage.kernel, stride, stage.expand, p, bn_momentum))
            else:
                blocks.append(MBConv(ch, out_ch, stage.kernel, stride, stage.expand, stage.se_ratio, p,
                                     bn_momentum))
            ch = out_ch
            index += 1
    return nn.Sequential(*blocks), ch
