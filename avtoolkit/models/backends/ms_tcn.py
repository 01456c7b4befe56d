"""Backend ``ms_tcn``: the multi-scale TCN of Ma et al. (ICASSP 2021), the LRW baseline back-end.

Follows mpc001's ``Lipreading_using_Temporal_Convolutional_Networks``
(``MultiscaleMultibranchTCN``): every block runs one branch per kernel size (3, 5, 7 by
default) with ``hidden`` channels each, concatenates them, twice, and adds a residual;
dilation doubles per block; non-causal (symmetric) padding. With a 512-d ResNet-18
front-end, ``hidden=256`` and 4 blocks this is the 36M-parameter model of that repository.
"""

from __future__ import annotations

from torch import Tensor, nn
import torch

from avtoolkit.models.backends.tcn import MaskedConvStack
from avtoolkit.registry.kinds import BACKENDS


class _MultibranchConv(nn.Module):
    """One conv per kernel size -> BatchNorm -> PReLU, concatenated over branches."""

    def __init__(self, in_ch: int, branch_ch: int, kernels: list[int], dilation: int) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(in_ch, branch_ch, k, padding=(k - 1) * dilation // 2, dilation=dilation),
                nn.BatchNorm1d(branch_ch),
                nn.PReLU(branch_ch),
            )
            for k in kernels
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class _MultibranchBlock(nn.Module):
    def __init__(self, in_ch: int, hidden: int, kernels: list[int], dilation: int, dropout: float) -> None:
        super().__init__()
        out_ch = hidden * len(kernels)
        self.conv1 = _MultibranchConv(in_ch, hidden, kernels, dilation)
        self.conv2 = _MultibranchConv(out_ch, hidden, kernels, dilation)
        self.dropout = nn.Dropout(dropout)
        self.downsample = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.act = nn.PReLU(out_ch)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        m = mask[:, None, :].to(x.dtype)  # zeroed padding == the convs' own zero padding
        y = self.dropout(self.conv1(x * m))
        y = self.dropout(self.conv2(y * m))
        return self.act(y + self.downsample(x)) * m


@BACKENDS.register("ms_tcn")
class MultiscaleTCNBackend(MaskedConvStack):
    """Multi-scale (multi-branch) temporal convolutional network.

    Args:
        input_dim: features per input frame (injected by the assembler).
        hidden: channels per branch; a block outputs ``hidden * len(kernel_sizes)``.
        layers: number of blocks (dilation 1, 2, 4, ...).
        kernel_sizes: odd kernel sizes, one branch each.
        dropout: dropout after each multi-branch convolution.

    Examples:
        >>> import torch
        >>> tcn = MultiscaleTCNBackend(input_dim=8, hidden=4, layers=2)
        >>> y, n = tcn(torch.randn(2, 9, 8), torch.tensor([9, 5]))
        >>> tuple(y.shape)
        (2, 9, 12)
    """

    def __init__(self, input_dim: int, hidden: int = 256, layers: int = 4,
                 kernel_sizes: list[int] | None = None, dropout: float = 0.2) -> None:
        super().__init__()
        kernels = list(kernel_sizes or [3, 5, 7])
        if any(k % 2 == 0 for k in kernels):
            raise ValueError(f"ms_tcn kernel_sizes must be odd to keep the length, got {kernels}")
        out_ch = hidden * len(kernels)
        self.blocks = nn.ModuleList(
            _MultibranchBlock(input_dim if i == 0 else out_ch, hidden, kernels, 2 ** i, dropout)
            for i in range(layers)
        )
        self.output_dim = out_ch
