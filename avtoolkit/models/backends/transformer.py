"""Backend ``transformer``: batch-first Transformer encoder with key-padding masks."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Backend, lengths_to_mask
from avtoolkit.registry.kinds import BACKENDS


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed sine/cosine position codes ``[length, dim]`` (Vaswani et al., 2017).

    Examples:
        >>> sinusoidal_positions(3, 4)[0].tolist()
        [0.0, 1.0, 0.0, 1.0]
    """
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim, device=device)
    codes[:, 0::2] = torch.sin(pos * freq)
    codes[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return codes


@BACKENDS.register("transformer")
class TransformerBackend(Backend):
    """Pre-norm Transformer encoder over the frames of a clip.

    Padded frames are excluded from attention through a key-padding mask, so neither the
    padding nor the other clips of a batch change a clip's output. Positions are fixed
    sinusoids added after the input projection (word clips are short; no length limit).

    Args:
        input_dim: features per input frame (injected by the assembler).
        dim: model width; the input is projected to it when it differs (default: ``input_dim``).
        layers: encoder layers.
        heads: attention heads (must divide ``dim``).
        ff_dim: feed-forward width (default ``4 * dim``).
        dropout: dropout inside the layers.

    Examples:
        >>> import torch
        >>> tr = TransformerBackend(input_dim=16, layers=1, heads=2)
        >>> y, n = tr(torch.randn(2, 7, 16), torch.tensor([7, 4]))
        >>> tuple(y.shape)
        (2, 7, 16)
    """

    def __init__(self, input_dim: int, dim: int | None = None, layers: int = 4, heads: int = 4,
                 ff_dim: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        dim = dim or input_dim
        if dim % heads:
            raise ValueError(f"transformer dim {dim} is not divisible by heads={heads}")
        self.proj = nn.Linear(input_dim, dim) if dim != input_dim else nn.Identity()
        layer = nn.TransformerEncoderLayer(dim, heads, ff_dim or 4 * dim, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        # enable_nested_tensor=False: the nested fast path only applies to post-norm layers.
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = lengths_to_mask(lengths, x.shape[1])
        x = self.proj(x) + sinusoidal_positions(x.shape[1], self.output_dim, x.device).to(x.dtype)
        y = self.encoder(self.dropout(x), src_key_padding_mask=~mask)
        return y * mask[..., None].to(y.dtype), lengths
