"""``audio_cnn``: a small 2-D CNN over log-mel frames (the AV-ASR seed's audio encoder)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Encoder, lengths_to_mask
from avtoolkit.registry.kinds import ENCODERS


def _conv_bn_relu(c_in: int, c_out: int, stride: tuple[int, int], bn_momentum: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out, momentum=bn_momentum),
        nn.ReLU(inplace=True),
    )


@ENCODERS.register("audio_cnn")
class AudioCNN(Encoder):
    """Log-mel frames to a 512-dim sequence: three 3x3 conv layers, then two FC layers.

    The spectrogram ``[B, T, n_mels]`` is treated as a one-channel image. Every conv halves
    the mel axis; only the first ``time_subsampling`` convs halve time, so 100 Hz input
    becomes 25 Hz by default: enough frames for character CTC on normal speech (a 3 s
    GRID sentence has ~25-30 characters, its 75 output frames leave room for blanks and
    repeats) and the same rate as 25 fps video.

    Args:
        n_mels: mel bands of the input.
        channels: output channels of the conv layers.
        hidden_dim: size of both fully connected layers (the output size).
        dropout: dropout after each fully connected layer.
        time_subsampling: how many of the first conv layers use stride 2 in time.
        freq_subsampling: how many of the first conv layers use stride 2 along the mel axis
            (default: all). 0 keeps every mel band to the FC layers (see docs/grid.md).
        bn_momentum: BatchNorm momentum in PyTorch's sense (weight of the new batch).
        input_rate: frames per second of the input (log-mel hop 10 ms: 100).

    Examples:
        >>> import torch
        >>> enc = AudioCNN().eval()
        >>> x, n = enc(torch.randn(2, 300, 40), torch.tensor([300, 150]))
        >>> tuple(x.shape), n.tolist(), enc.output_rate
        ((2, 75, 512), [75, 38], 25.0)
    """

    modality = "audio"

    def __init__(self, n_mels: int = 40, channels: list[int] = [32, 64, 128], hidden_dim: int = 512,
                 dropout: float = 0.2, time_subsampling: int = 2, bn_momentum: float = 0.1,
                 input_rate: float = 100.0, freq_subsampling: int | None = None) -> None:
        super().__init__()
        if not 0 <= time_subsampling <= len(channels):
            raise ValueError(f"time_subsampling must be between 0 and {len(channels)} (the conv layers), "
                             f"got {time_subsampling}")
        freq_subsampling = len(channels) if freq_subsampling is None else freq_subsampling
        if not 0 <= freq_subsampling <= len(channels):
            raise ValueError(f"freq_subsampling must be between 0 and {len(channels)} (the conv layers), "
                             f"got {freq_subsampling}")
        layers, c_in, freq = [], 1, n_mels
        for i, c_out in enumerate(channels):
            f_stride = 2 if i < freq_subsampling else 1
            layers.append(_conv_bn_relu(c_in, c_out, (2 if i < time_subsampling else 1, f_stride), bn_momentum))
            c_in, freq = c_out, (freq + f_stride - 1) // f_stride
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Linear(c_in * freq, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.n_mels = n_mels
        self.output_dim = hidden_dim
        self.input_rate = float(input_rate)
        self.time_stride = 2 ** time_subsampling

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"audio_cnn expects log-mel frames [batch, time, {self.n_mels}], got {tuple(x.shape)}")
        n = lengths
        h = (x * lengths_to_mask(n, x.shape[1]).unsqueeze(-1).to(x.dtype)).unsqueeze(1)  # [B, 1, T, F]
        for conv in self.convs:
            h = conv(h)
            if conv[0].stride[0] == 2:
                n = torch.div(n + 1, 2, rounding_mode="floor")
            # Zero the padding frames after every layer (BatchNorm turns zeros into its bias):
            # then an utterance's output does not depend on how much padding its batch adds.
            h = h * lengths_to_mask(n, h.shape[2])[:, None, :, None].to(h.dtype)
        h = h.permute(0, 2, 1, 3).flatten(2)  # [B, T', C * F']
        out_lengths = self.output_lengths(lengths)
        h = self.fc(h)
        # Padding frames would otherwise carry conv/BN bias into the fusion.
        return h * lengths_to_mask(out_lengths, h.shape[1]).unsqueeze(-1), out_lengths
