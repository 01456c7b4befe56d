"""Backend ``tcn``: dilated, non-causal temporal convolutions that keep the length."""

from __future__ import annotations

from torch import Tensor, nn

from avtoolkit.models.contract import Backend, lengths_to_mask
from avtoolkit.registry.kinds import BACKENDS


class TemporalBlock(nn.Module):
    """Two dilated ``Conv1d -> BatchNorm -> PReLU -> Dropout`` with a residual connection.

    Padded frames are zeroed before every convolution, so they contribute exactly what the
    convolution's own zero padding would: a clip's output does not depend on its padding.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = (kernel - 1) * dilation // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel, padding=pad, dilation=dilation)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel, padding=pad, dilation=dilation)
        self.post1 = nn.Sequential(nn.BatchNorm1d(out_ch), nn.PReLU(out_ch), nn.Dropout(dropout))
        self.post2 = nn.Sequential(nn.BatchNorm1d(out_ch), nn.PReLU(out_ch), nn.Dropout(dropout))
        self.downsample = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.act = nn.PReLU(out_ch)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        m = mask[:, None, :].to(x.dtype)
        y = self.post1(self.conv1(x * m))
        y = self.post2(self.conv2(y * m))
        return self.act(y + self.downsample(x)) * m


class MaskedConvStack(Backend):
    """Runs ``self.blocks`` over ``[B, C, T]`` with the padding mask; shared by the TCN backends."""

    blocks: nn.ModuleList

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = lengths_to_mask(lengths, x.shape[1])
        y = x.transpose(1, 2)
        for block in self.blocks:
            y = block(y, mask)
        return y.transpose(1, 2), lengths


@BACKENDS.register("tcn")
class TCNBackend(MaskedConvStack):
    """Temporal convolutional network: dilation doubles per block (1, 2, 4, ...).

    Args:
        input_dim: features per input frame (injected by the assembler).
        channels: width of every block.
        layers: number of blocks.
        kernel_size: odd temporal kernel (odd keeps the length with symmetric padding).
        dropout: dropout after each convolution.

    Examples:
        >>> import torch
        >>> tcn = TCNBackend(input_dim=8, channels=16, layers=2)
        >>> y, n = tcn(torch.randn(2, 9, 8), torch.tensor([9, 5]))
        >>> tuple(y.shape)
        (2, 9, 16)
    """

    def __init__(self, input_dim: int, channels: int = 256, layers: int = 4, kernel_size: int = 3,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"tcn kernel_size must be odd to keep the length, got {kernel_size}")
        self.blocks = nn.ModuleList(
            TemporalBlock(input_dim if i == 0 else channels, channels, kernel_size, 2 ** i, dropout)
            for i in range(layers)
        )
        self.output_dim = channels
