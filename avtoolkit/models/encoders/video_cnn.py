"""``video_cnn``: a per-frame 2-D CNN over grayscale mouth crops (the AV-ASR seed's video encoder)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avtoolkit.models.contract import Encoder, lengths_to_mask
from avtoolkit.registry.kinds import ENCODERS


@ENCODERS.register("video_cnn")
class VideoCNN(Encoder):
    """Mouth crops ``[B, T, C, H, W]`` to a 512-dim sequence at the video frame rate.

    Each frame goes through 3x3 stride-2 conv layers (BatchNorm, ReLU), is average-pooled
    to ``pool_size x pool_size`` (so any crop size works and the first FC layer stays
    small: 128*4*4 inputs instead of 128*8*8 for 64x64 crops, which keeps the AV-ASR model
    under 5M parameters), then two fully connected layers. Frames are independent: the
    temporal modelling is left to the fusion, backends and CTC.

    Args:
        in_channels: 1 for grayscale crops, 3 for RGB.
        channels: output channels of the conv layers.
        hidden_dim: size of both fully connected layers (the output size).
        pool_size: spatial size after adaptive average pooling.
        dropout: dropout after each fully connected layer.
        bn_momentum: BatchNorm momentum in PyTorch's sense (weight of the new batch).
        input_rate: frames per second of the video (GRID and the demo corpus: 25).

    Examples:
        >>> import torch
        >>> enc = VideoCNN().eval()
        >>> x, n = enc(torch.randn(2, 75, 1, 64, 64), torch.tensor([75, 40]))
        >>> tuple(x.shape), n.tolist(), enc.output_rate
        ((2, 75, 512), [75, 40], 25.0)
    """

    modality = "video"

    def __init__(self, in_channels: int = 1, channels: list[int] = [32, 64, 128], hidden_dim: int = 512,
                 pool_size: int = 4, dropout: float = 0.2, bn_momentum: float = 0.1,
                 input_rate: float = 25.0) -> None:
        super().__init__()
        layers, c_in = [], in_channels
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c_out, momentum=bn_momentum), nn.ReLU(inplace=True)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.pool_size = pool_size
        self.fc = nn.Sequential(
            nn.Linear(c_in * pool_size * pool_size, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.in_channels = in_channels
        self.output_dim = hidden_dim
        self.input_rate = float(input_rate)
        self.time_stride = 1

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(f"video_cnn expects mouth crops [batch, time, {self.in_channels}, height, width], "
                             f"got {tuple(x.shape)}")
        b, t = x.shape[:2]
        h = self.convs(x.flatten(0, 1))  # frames are independent: fold time into batch
        h = self._pool(h).flatten(1)
        h = self.fc(h).view(b, t, -1)
        return h * lengths_to_mask(lengths, t).unsqueeze(-1), lengths

    def _pool(self, h: Tensor) -> Tensor:
        if not torch.onnx.is_in_onnx_export():
            return self.pool(h)
        # The ONNX exporter cannot size an adaptive pool after the time axis is folded into
        # the batch. int(): the crop size is fixed per export, so the pooling is a constant.
        height, width, p = int(h.shape[-2]), int(h.shape[-1]), self.pool_size
        if height % p == 0 and width % p == 0:  # evenly divisible (64x64 crops): a plain pool
            return F.avg_pool2d(h, kernel_size=(height // p, width // p))
        # Otherwise (48x48 crops give 6x6 maps) the adaptive pool's overlapping bins are a
        # fixed linear map on each axis: rows @ h @ cols^T is exactly AdaptiveAvgPool2d.
        rows, cols = adaptive_pool_matrix(height, p).to(h), adaptive_pool_matrix(width, p).to(h)
        return rows @ h @ cols.T


def adaptive_pool_matrix(size: int, bins: int) -> Tensor:
    """``[bins, size]`` averaging matrix of 1-D adaptive average pooling (PyTorch's bin edges).

    Examples:
        >>> adaptive_pool_matrix(6, 4)
        tensor([[0.5000, 0.5000, 0.0000, 0.0000, 0.0000, 0.0000],
                [0.0000, 0.5000, 0.5000, 0.0000, 0.0000, 0.0000],
                [0.0000, 0.0000, 0.0000, 0.5000, 0.5000, 0.0000],
                [0.0000, 0.0000, 0.0000, 0.0000, 0.5000, 0.5000]])
    """
    matrix = torch.zeros(bins, size)
    for i in range(bins):
        start, end = (i * size) // bins, -((-(i + 1) * size) // bins)  # floor and ceil, as PyTorch bins
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix
