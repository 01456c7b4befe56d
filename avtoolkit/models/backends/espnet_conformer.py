"""Backend ``espnet_conformer``: the Conformer as ESPnet and auto_avsr build it, key for key.

Differences from the ``conformer`` backend (torchaudio's layers) that matter for their
checkpoints: relative-position self-attention (no absolute position code; inputs scaled by
``sqrt(dim)``), ReLU feed-forward blocks, LayerNorm eps 1e-12, a GLU/depthwise/BatchNorm/SiLU
convolution module without its own LayerNorm, and a final LayerNorm after all layers. The
parameter names are theirs, so ``backends.0.encoders.3.self_attn.linear_q.weight`` is their
``encoder.encoders.3.self_attn.linear_q.weight`` (:mod:`avtoolkit.models.convert`).

Padded frames are zeroed before every depthwise convolution (as the ``conformer`` backend
does), so each clip of a padded batch gets the output it gets alone; ESPnet lets the padding
into the convolution, which only matters for batches of unequal lengths.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from avtoolkit.models.backends._espnet_attention import FeedForward, RelPositionAttention, relative_positions
from avtoolkit.models.contract import Backend, lengths_to_mask
from avtoolkit.registry.kinds import BACKENDS


def layer_norm(dim: int) -> nn.LayerNorm:
    """ESPnet's LayerNorm: eps 1e-12 (their checkpoints were trained with it)."""
    return nn.LayerNorm(dim, eps=1e-12)


class ConvolutionModule(nn.Module):
    """Pointwise conv to 2x channels, GLU, depthwise conv, BatchNorm, SiLU, pointwise conv."""

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"espnet_conformer kernel_size must be odd to keep the length, got {kernel_size}")
        # "cov" is how the released checkpoints spell it
        self.pointwise_cov1 = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.BatchNorm1d(dim)
        self.pointwise_cov2 = nn.Conv1d(dim, dim, 1)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        y = nn.functional.glu(self.pointwise_cov1(x.transpose(1, 2)), dim=1) * keep
        y = nn.functional.silu(self.norm(self.depthwise_conv(y)))
        return self.pointwise_cov2(y).transpose(1, 2)


class ConformerLayer(nn.Module):
    """Half-step feed-forward, relative-position self-attention, convolution, half-step feed-forward, LayerNorm."""

    def __init__(self, dim: int, heads: int, ff_dim: int, kernel_size: int, dropout: float,
                 attention_dropout: float) -> None:
        super().__init__()
        self.feed_forward_macaron = FeedForward(dim, ff_dim, dropout)
        self.norm_ff_macaron = layer_norm(dim)
        self.self_attn = RelPositionAttention(dim, heads, attention_dropout)
        self.norm_mha = layer_norm(dim)
        self.conv_module = ConvolutionModule(dim, kernel_size)
        self.norm_conv = layer_norm(dim)
        self.feed_forward = FeedForward(dim, ff_dim, dropout)
        self.norm_ff = layer_norm(dim)
        self.norm_final = layer_norm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, positions: Tensor, mask: Tensor, keep: Tensor) -> Tensor:
        x = x + 0.5 * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        x = x + self.dropout(self.self_attn(self.norm_mha(x), positions, mask))
        x = x + self.dropout(self.conv_module(self.norm_conv(x), keep))
        x = x + 0.5 * self.dropout(self.feed_forward(self.norm_ff(x)))
        return self.norm_final(x)


@BACKENDS.register("espnet_conformer")
class ESPnetConformer(Backend):
    """Conformer encoder with relative-position attention (ESPnet / auto_avsr layout).

    auto_avsr's base model: ``dim=768, layers=12, heads=12, ff_dim=3072, kernel_size=31`` after a
    linear projection of the 512-dim front-end output (``proj``, their ``proj_encoder``).

    Args:
        input_dim: features per input frame (injected); projected to ``dim`` when ``project``.
        dim: model width.
        layers: Conformer layers.
        heads: attention heads (must divide ``dim``).
        ff_dim: feed-forward width.
        kernel_size: odd depthwise convolution kernel, in frames.
        dropout: dropout inside the layers and on the scaled input.
        attention_dropout: dropout on the attention weights.
        project: keep a linear projection ``input_dim -> dim`` (auto_avsr has one even if sizes match).

    Examples:
        >>> import torch
        >>> enc = ESPnetConformer(input_dim=12, dim=8, layers=1, heads=2, ff_dim=16, kernel_size=3).eval()
        >>> y, n = enc(torch.randn(2, 5, 12), torch.tensor([5, 3]))
        >>> tuple(y.shape), n.tolist(), float(y[1, 3:].abs().sum())
        ((2, 5, 8), [5, 3], 0.0)
    """

    def __init__(self, input_dim: int, dim: int = 768, layers: int = 12, heads: int = 12, ff_dim: int = 3072,
                 kernel_size: int = 31, dropout: float = 0.1, attention_dropout: float = 0.0,
                 project: bool = True) -> None:
        super().__init__()
        if not project and input_dim != dim:
            raise ValueError(f"espnet_conformer: project=false needs input_dim ({input_dim}) == dim ({dim})")
        self.proj = nn.Linear(input_dim, dim) if project else nn.Identity()
        self.encoders = nn.ModuleList(ConformerLayer(dim, heads, ff_dim, kernel_size, dropout, attention_dropout)
                                      for _ in range(layers))
        self.after_norm = layer_norm(dim)
        self.input_dropout = nn.Dropout(dropout)
        self.dim = dim
        self.output_dim = dim

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        valid = lengths_to_mask(lengths, x.shape[1])
        mask, keep = valid[:, None, :], valid[:, None, :].to(x.dtype)
        x = self.input_dropout(self.proj(x) * math.sqrt(self.dim))
        positions = self.input_dropout(relative_positions(x.shape[1], self.dim, x.device).to(x.dtype))
        for layer in self.encoders:
            x = layer(x, positions, mask, keep)
        return self.after_norm(x) * valid[..., None].to(x.dtype), lengths

