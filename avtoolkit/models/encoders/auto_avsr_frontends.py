"""Encoders ``auto_avsr_video`` and ``auto_avsr_audio`` (raw waveform): auto_avsr's front-ends, key for key.

Both are a stem and a ResNet-18 trunk (four stages of two basic blocks, 64-128-256-512
channels, the first block of stages 2-4 striding by 2 with a 1x1 projection shortcut) with SiLU
("swish") activations, as in mpc001/auto_avsr (and Ma et al., "Auto-AVSR", ICASSP 2023):

* video: a 5x7x7 3-D convolution over ``[B, T, 1, H, W]`` grayscale mouth crops (stride 1 in
  time, 2 in space), BatchNorm, SiLU, 3x3 max-pooling; then the 2-D trunk on each frame and
  a global average pool: 512 features per video frame (25 fps in, 25 fps out);
* audio: an 80-tap stride-4 1-D convolution over the raw 16 kHz waveform ``[B, S]``, then
  the 1-D trunk (total stride 32) and an average pool of 20: one 512-dim frame per 640
  samples, 25 per second like the video. Trailing samples short of a whole frame are dropped.

Parameter names are those of their checkpoints under ``frontend.`` (``trunk.layer2.0.downsample.0``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Encoder
from avtoolkit.registry.kinds import ENCODERS

#: raw-audio samples per output frame: 16 kHz / 25 fps
SAMPLES_PER_FRAME = 640


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and SiLU, and a shortcut (projected when the shape changes)."""

    def __init__(self, conv: Callable[..., nn.Module], norm: Callable[[int], nn.Module], c_in: int, c_out: int,
                 stride: int) -> None:
        super().__init__()
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = norm(c_out)
        self.downsample = (nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), norm(c_out))
                           if stride != 1 or c_in != c_out else None)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = nn.functional.silu(self.bn1(self.conv1(x)))
        return nn.functional.silu(self.bn2(self.conv2(y)) + shortcut)


def _stages(conv: Callable[..., nn.Module], norm: Callable[[int], nn.Module]) -> dict[str, nn.Sequential]:
    """``layer1`` .. ``layer4`` of ResNet-18."""
    stages, c_in = {}, 64
    for i, c_out in enumerate((64, 128, 256, 512)):
        stride = 1 if i == 0 else 2
        stages[f"layer{i + 1}"] = nn.Sequential(BasicBlock(conv, norm, c_in, c_out, stride),
                                                BasicBlock(conv, norm, c_out, c_out, 1))
        c_in = c_out
    return stages


class _Trunk2d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for name, stage in _stages(nn.Conv2d, nn.BatchNorm2d).items():
            self.add_module(name, stage)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class _Trunk1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 64, 80, stride=4, padding=38, bias=False)
        self.bn1 = nn.BatchNorm1d(64)
        for name, stage in _stages(nn.Conv1d, nn.BatchNorm1d).items():
            self.add_module(name, stage)
        self.avgpool = nn.AvgPool1d(20, 20)

    def forward(self, x: Tensor) -> Tensor:
        x = nn.functional.silu(self.bn1(self.conv1(x)))
        return self.avgpool(self.layer4(self.layer3(self.layer2(self.layer1(x)))))


@ENCODERS.register("auto_avsr_video")
class ResNet18Video(Encoder):
    """auto_avsr's visual front-end: 3-D conv stem and a 2-D ResNet-18, 512 features per frame.

    Args:
        input_rate: frames per second of the video (their models: 25).

    Examples:
        >>> import torch
        >>> enc = ResNet18Video().eval()
        >>> x, n = enc(torch.randn(2, 6, 1, 32, 32), torch.tensor([6, 4]))
        >>> tuple(x.shape), n.tolist(), enc.output_rate
        ((2, 6, 512), [6, 4], 25.0)
    """

    modality = "video"

    def __init__(self, input_rate: float = 25.0) -> None:
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64), nn.SiLU(), nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        self.trunk = _Trunk2d()
        self.output_dim = 512
        self.input_rate = float(input_rate)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 5 or x.shape[2] != 1:
            raise ValueError(f"auto_avsr_video reads grayscale crops [B, T, 1, H, W], got {tuple(x.shape)}")
        # padded frames are zeroed: the 5-frame stem would otherwise read them into the last valid frames
        valid = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None].to(x.device)).to(x.dtype)
        y = self.frontend3D((x * valid[:, :, None, None, None]).transpose(1, 2))  # [B, 64, T, H', W']
        b, c, t = y.shape[:3]
        y = self.trunk(y.transpose(1, 2).reshape(b * t, c, *y.shape[3:]))
        return y.view(b, t, -1), lengths


@ENCODERS.register("auto_avsr_audio")
class ResNet18Audio(Encoder):
    """auto_avsr's audio front-end: a 1-D ResNet-18 over the raw 16 kHz waveform, 25 frames per second.

    Reads ``audio [B, S]`` (or ``[B, S, 1]``) samples and their counts; frame ``i`` covers
    samples ``640 i .. 640 (i + 1)``. Its ``audio_input`` is ``"waveform"``, so the datasets and
    the ``Transcriber`` give it each utterance's waveform normalised to zero mean and unit
    variance (:func:`avtoolkit.data.audio_input.normalise_waveform`), as auto_avsr's own data
    pipeline does before this front-end.

    Args:
        sample_rate: must be 16000 (the stride is fixed to 640 samples per 25-fps frame).

    Examples:
        >>> import torch
        >>> enc = ResNet18Audio().eval()
        >>> x, n = enc(torch.randn(2, 3300), torch.tensor([3300, 1900]))
        >>> tuple(x.shape), n.tolist(), enc.output_rate
        ((2, 5, 512), [5, 2], 25.0)
    """

    modality = "audio"
    #: the batch builders (datasets, Transcriber) give this encoder the normalised waveform, not log-mel
    audio_input = "waveform"
    time_stride = SAMPLES_PER_FRAME

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        if sample_rate != 16000:
            raise ValueError(f"auto_avsr_audio reads 16 kHz audio (640 samples per frame), got sample_rate={sample_rate}")
        self.trunk = _Trunk1d()
        self.output_dim = 512
        self.input_rate = float(sample_rate)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Whole 640-sample frames only (the trailing part frame is dropped)."""
        return torch.div(lengths, SAMPLES_PER_FRAME, rounding_mode="floor")

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() == 3 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.dim() != 2:
            raise ValueError(f"auto_avsr_audio reads raw waveforms [B, S], got {tuple(x.shape)}")
        frames = x.shape[1] // SAMPLES_PER_FRAME
        valid = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None].to(x.device)).to(x.dtype)
        y = self.trunk((x * valid)[:, None, : frames * SAMPLES_PER_FRAME])
        return y.transpose(1, 2), self.output_lengths(lengths.to(x.device))
