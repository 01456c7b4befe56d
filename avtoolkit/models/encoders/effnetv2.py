"""Video encoder ``effnetv2_3d``: 3D-conv stem + per-frame EfficientNetV2 trunk + projection.

The lipreading front-end of Koumparoulis & Potamianos (ICASSP 2022, "Accurate and
Resource-Efficient Lipreading with EfficientNetV2 and Transformers"): a 3x5x5 spatio-temporal
convolution with stride 1x2x2 and, unlike the ResNet front-end of Stafylakis & Tzimiropoulos,
*no* max-pool (the paper shows the max-pool limits accuracy), then an EfficientNetV2 on each
frame (its own stride-2 3x3 stem, then the stage table), global average pooling and a linear
projection per frame.

The 2D stem is kept because it, not the max-pool, sets the resolution the stages run at: an
88x88 ROI reaches stage 1 at 22x22, as in the ResNet front-ends, and the T model costs 1.29
GMACs per 29-frame clip (``avtoolkit summary``). Without it every stage runs at 4x the area
(3.8 GMACs for T) for no reported gain; ``frame_stem_stride: 1`` restores that variant.
"""

from __future__ import annotations

import torch
from torch.nn import functional
from torch import Tensor, nn

from avtoolkit.models.contract import Encoder, lengths_to_mask
from avtoolkit.models.encoders._effnet_blocks import ConvBnAct, Stage, build_trunk, make_divisible
from avtoolkit.models.folding import ConvNormAct
from avtoolkit.registry.kinds import ENCODERS

F, M = True, False  # fused (Fused-MBConv) or not (MBConv + SE)

#: EfficientNetV2-S stage table (paper Table 4; timm ``efficientnetv2_s``).
_TABLE_S = [
    Stage(F, 1, 3, 1, 24, 2), Stage(F, 4, 3, 2, 48, 4), Stage(F, 4, 3, 2, 64, 4),
    Stage(M, 4, 3, 2, 128, 6, 0.25), Stage(M, 6, 3, 1, 160, 9, 0.25), Stage(M, 6, 3, 2, 256, 15, 0.25),
]
#: EfficientNetV2-B0 stage table (timm ``tf_efficientnetv2_b0``); B1-B3 scale it.
_TABLE_B = [
    Stage(F, 1, 3, 1, 16, 1), Stage(F, 4, 3, 2, 32, 2), Stage(F, 4, 3, 2, 48, 2),
    Stage(M, 4, 3, 2, 96, 3, 0.25), Stage(M, 6, 3, 1, 112, 5, 0.25), Stage(M, 6, 3, 2, 192, 8, 0.25),
]
#: EfficientNetV2-L stage table (paper Table 7 / timm ``efficientnetv2_l``).
_TABLE_L = [
    Stage(F, 1, 3, 1, 32, 4), Stage(F, 4, 3, 2, 64, 7), Stage(F, 4, 3, 2, 96, 7),
    Stage(M, 4, 3, 2, 192, 10, 0.25), Stage(M, 6, 3, 1, 224, 19, 0.25), Stage(M, 6, 3, 2, 384, 25, 0.25),
    Stage(M, 6, 3, 1, 640, 7, 0.25),
]

#: size -> (stage table, stem channels, width multiplier, depth multiplier, head features).
#: Depths are the published ones (T: timm's 0.9 of S; B: B3's 1.4 of B0). Widths are scaled
#: down from ImageNet so the whole LRW model (with Transformer, TCN and a 500-word classifier)
#: lands on the sizes reported for this architecture: T 8.2M, S 26.2M, B 11.9M parameters.
SIZES: dict[str, tuple[list[Stage], int, float, float, int]] = {
    "t": (_TABLE_S, 24, 0.5, 0.9, 512),
    "s": (_TABLE_S, 24, 1.0, 1.0, 1024),
    "b": (_TABLE_B, 32, 1.0, 1.4, 768),
    "l": (_TABLE_L, 32, 1.0, 1.0, 1280),
}


@ENCODERS.register("effnetv2_3d")
class EfficientNetV2Video(Encoder):
    """3D-conv stem (3x5x5, stride 1x2x2, no max-pool) + EfficientNetV2 per frame + projection.

    Input ``video [B, T, C, H, W]`` (normalised mouth ROIs, usually 88x88); output
    ``[B, T, output_dim]`` at the video frame rate. Frames past a clip's length are zeroed
    before the stem (exactly what the stem's own zero padding would see) and skipped by the
    trunk, so padding a clip never changes its features.

    Args:
        size: ``"t"``, ``"s"``, ``"b"`` or ``"l"`` (stage table and default multipliers).
        in_channels: 1 for grayscale ROIs, 3 for RGB.
        output_dim: features per frame after the projection.
        width: overrides the size's width multiplier (channels of every stage).
        depth: overrides the size's depth multiplier (blocks per stage, rounded up).
        head_features: channels of the 1x1 conv before pooling (0: none).
        drop_path_rate: stochastic depth of the last block (linearly less for earlier ones).
        dropout: dropout before the projection.
        bn_momentum: PyTorch BatchNorm momentum (weight of the new batch).
        frame_stem_stride: stride of EfficientNetV2's own 3x3 stem on each frame (2 as
            published; 1 skips the downsampling).

    Examples:
        >>> import torch
        >>> enc = EfficientNetV2Video("t", width=0.25, depth=0.2, head_features=0, output_dim=32)
        >>> y, n = enc(torch.randn(2, 5, 1, 32, 32), torch.tensor([5, 3]))
        >>> tuple(y.shape), n.tolist()
        ((2, 5, 32), [5, 3])
    """

    modality = "video"
    input_rate = 25.0

    def __init__(self, size: str = "t", in_channels: int = 1, output_dim: int = 384,
                 width: float | None = None, depth: float | None = None,
                 head_features: int | None = None, drop_path_rate: float = 0.2,
                 dropout: float = 0.1, bn_momentum: float = 0.1, frame_stem_stride: int = 2) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown EfficientNetV2 size {size!r}; choose one of {sorted(SIZES)}")
        table, stem_ch, default_width, default_depth, default_head = SIZES[size]
        width = default_width if width is None else width
        depth = default_depth if depth is None else depth
        head_features = default_head if head_features is None else head_features
        stem_out = make_divisible(stem_ch * width)
        self.stem = ConvNormAct(
            nn.Conv3d(in_channels, stem_out, (3, 5, 5), (1, 2, 2), (1, 2, 2), bias=False),
            nn.BatchNorm3d(stem_out, momentum=bn_momentum),
            nn.SiLU(inplace=True),
        )
        if frame_stem_stride not in (1, 2):
            raise ValueError(f"frame_stem_stride must be 1 or 2, got {frame_stem_stride}")
        self.frame_stem: nn.Module = nn.Identity()
        if frame_stem_stride == 2:
            self.frame_stem = ConvBnAct(stem_out, stem_out, 3, 2, bn_momentum=bn_momentum)
        self.trunk, ch = build_trunk(table, stem_out, width, depth, drop_path_rate, bn_momentum)
        if head_features:
            self.head_conv: nn.Module = ConvBnAct(ch, head_features, 1, bn_momentum=bn_momentum)
            ch = head_features
        else:
            self.head_conv = nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(ch, output_dim)
        self.output_dim = output_dim
        self.in_channels = in_channels

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"effnetv2_3d expects video [B, T, {self.in_channels}, H, W], got {tuple(x.shape)}")
        b, t = x.shape[:2]
        mask = lengths_to_mask(lengths, t)
        # A batch without padding (every LRW batch: 29-frame clips) skips the masking, the
        # boolean gather and scatter, and their backward passes (a zero fill and an index_put
        # of the stem's whole output): a reshape gives the same frames in the same order.
        full = bool(mask.all())
        if not full:
            x = x * mask[:, :, None, None, None].to(x.dtype)
        if self.stem.folds():
            frames = _stem_per_frame(self.stem, x, mask)
        elif full:
            # Training on a batch without padding: the same per-frame route with the norm in
            # its training form (its statistics over all frames are the 3D norm's). The 3D
            # conv's output from a 1-channel input comes out [B, C, T, H, W] whatever the
            # weights' layout, and regrouping it into frames copied the stem's whole output
            # forward and backward; this route hands the trunk channels-last frames.
            frames = _stem_per_frame(self.stem, x, mask, fold=False)
        else:
            x = self.stem(x.transpose(1, 2)).transpose(1, 2)  # [B, T, C', H', W']
            frames = x.flatten(0, 1) if full else x[mask]  # only valid frames go through the trunk
        feats = self.head_conv(self.trunk(self.frame_stem(frames))).mean((2, 3))
        feats = self.proj(self.dropout(feats))
        if full:
            return feats.view(b, t, self.output_dim), lengths
        out = feats.new_zeros(b, t, self.output_dim)
        out[mask] = feats
        return out, lengths


def _stem_per_frame(stem: ConvNormAct, x: Tensor, mask: Tensor, fold: bool = True) -> Tensor:
    """The 3D stem's output for the valid frames only, computed as one 2D convolution per frame.

    A ``kt x kh x kw`` convolution with temporal stride 1 is a 2D convolution over each frame
    stacked with its ``kt - 1`` neighbours as channels (zeros past the clip's ends, as the 3D
    conv's padding; frames past a clip's length are already zeroed). Same weights, same sums:
    the outputs agree up to float rounding. What it saves in evaluation: the 3D output's
    ``[B, C, T, H, W] -> frames`` transpose copy (as large as the stem's output), the
    padded frames' work, and it hands the trunk channels-last frames directly.

    ``fold=False`` (training, no padded frames) applies the conv's own weights and then the
    norm as a module on the frames viewed as ``[B * T, C, 1, H, W]``: batch statistics over
    (frames, height, width) per channel, what the 3D norm computes over (batch, time,
    height, width), running statistics updated the same way.
    """
    conv = stem[0]
    weight, bias = stem.folded() if fold else (conv.weight, conv.bias)  # [O, C, kt, kh, kw]
    out_ch, in_ch, kt = weight.shape[:3]
    t, pad_t = x.shape[1], conv.padding[0]
    padded = functional.pad(x, (0, 0, 0, 0, 0, 0, pad_t, pad_t))  # [B, T + 2 pad_t, C, H, W]
    # One plane per (time offset, channel), stacked last: [B, T, H, W, kt * C] is already the
    # channels-last layout of the frames the 2D convolution reads.
    stacked = torch.stack([padded[:, i:i + t, c] for i in range(kt) for c in range(in_ch)], dim=-1)
    stacked = stacked.flatten(0, 1) if bool(mask.all()) else stacked[mask]
    weight2d = weight.transpose(1, 2).reshape(out_ch, kt * in_ch, *weight.shape[3:])
    y = functional.conv2d(stacked.permute(0, 3, 1, 2), weight2d.contiguous(memory_format=torch.channels_last),
                          bias, conv.stride[1:], conv.padding[1:])
    if not fold:
        y = stem[1](y.unsqueeze(2)).squeeze(2)
    return stem[2](y) if len(stem) > 2 else y
