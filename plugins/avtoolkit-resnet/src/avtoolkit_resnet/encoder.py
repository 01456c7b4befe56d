"""The 3D-conv stem + ResNet-18 per-frame trunk used by the best-known LRW and LRS3 models.

The layout follows the visual frontend of mpc001's Lipreading_using_TCN and auto_avsr:
one spatio-temporal convolution (5x7x7) sees a short window of frames, then a 2D
ResNet-18 runs on every frame independently and its global average pool gives one
512-dim vector per frame. The time axis is never strided, so a 29-frame LRW clip gives
29 output frames at 25 fps.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Encoder, lengths_to_mask

ReluType = Literal["relu", "prelu"]


def _activation(relu_type: ReluType, channels: int) -> nn.Module:
    # PReLU is what the published LRW checkpoints use; ReLU is the torchvision default.
    return nn.PReLU(num_parameters=channels) if relu_type == "prelu" else nn.ReLU(inplace=True)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a (projected) shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int, relu_type: ReluType) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = _activation(relu_type, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act2 = _activation(relu_type, channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + shortcut)


class ResNet18Frontend(Encoder):
    """3D-conv stem + ResNet-18 per frame: mouth ROIs to 512-dim frame features (LRW/LRS3 frontend).

    Input ``[batch, time, channels, height, width]`` mouth crops (88x88 in the LRW
    literature, any size of at least 32x32 works); output ``[batch, time, 512]`` with
    padded frames set to zero. About 11.2M parameters.

    Args:
        in_channels: 1 for grayscale mouth ROIs, 3 for RGB.
        relu_type: ``"prelu"`` (as the published LRW models) or ``"relu"``.
        frame_rate: frames per second of the input video; the output has the same rate.

    Raises:
        ValueError: ``in_channels`` is not positive, or ``relu_type`` is unknown.

    Examples:
        >>> import torch
        >>> encoder = ResNet18Frontend().eval()
        >>> features, lengths = encoder(torch.randn(2, 5, 1, 44, 44), torch.tensor([5, 3]))
        >>> tuple(features.shape), lengths.tolist(), encoder.output_dim
        ((2, 5, 512), [5, 3], 512)
        >>> float(features[1, 3:].abs().sum())
        0.0
    """

    modality = "video"
    output_dim = 512
    time_stride = 1

    def __init__(self, in_channels: int = 1, relu_type: ReluType = "prelu", frame_rate: float = 25.0) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be 1 (grayscale) or more, got {in_channels}")
        if relu_type not in ("relu", "prelu"):
            raise ValueError(f"relu_type must be 'relu' or 'prelu', got {relu_type!r}")
        self.in_channels = in_channels
        self.input_rate = float(frame_rate)
        self.stem = nn.Sequential(
            # Time kernel 5 with padding 2 and stride 1: each frame sees +-2 neighbours,
            # and the number of frames is preserved.
            nn.Conv3d(in_channels, 64, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            _activation(relu_type, 64),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        layers: list[nn.Module] = []
        channels = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [BasicBlock(channels, width, stride, relu_type), BasicBlock(width, width, 1, relu_type)]
            channels = width
        self.trunk = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Encodes mouth ROIs.

        Args:
            x: ``[batch, time, channels, height, width]`` video.
            lengths: ``[batch]`` valid frames per clip.

        Returns:
            ``[batch, time, 512]`` features (zero on padded frames) and the unchanged lengths.

        Raises:
            ValueError: ``x`` is not 5-D or has the wrong number of channels.
        """
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(
                f"resnet18_3d expects video [batch, time, {self.in_channels}, height, width], "
                f"got shape {tuple(x.shape)}"
            )
        batch, time = x.shape[:2]
        y = self.stem(x.transpose(1, 2))  # [B, 64, T, H/4, W/4]
        y = y.transpose(1, 2).flatten(0, 1)  # every frame through the 2D trunk
        y = self.pool(self.trunk(y)).flatten(1).view(batch, time, self.output_dim)
        mask = lengths_to_mask(lengths.to(y.device), time)
        return y * mask.unsqueeze(-1).to(y.dtype), lengths
