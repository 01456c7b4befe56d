"""``attention``: cross-modal attention, each stream attending to the other(s)."""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.fusion._base import AlignedFusion
from avtoolkit.registry.kinds import FUSIONS


class CrossAttention(nn.Module):
    """Multi-head attention of ``query [B, T, D]`` over ``keys [B, S, D]`` where ``key_mask`` is True.

    Written out (rather than ``nn.MultiheadAttention``) so that the ONNX export keeps the
    time axes dynamic: the built-in module's exported reshapes freeze the traced length.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, keys: Tensor, key_mask: Tensor) -> Tensor:
        b, _, d = query.shape
        dh = d // self.heads
        q = self.q(query).view(b, -1, self.heads, dh).transpose(1, 2)  # [B, H, T, dh]
        k, v = self.kv(keys).view(b, -1, 2, self.heads, dh).permute(2, 0, 3, 1, 4)  # 2 x [B, H, S, dh]
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)
        scores = scores.masked_fill(~key_mask[:, None, None, :], -1e4)
        attended = self.dropout(scores.softmax(dim=-1)) @ v  # [B, H, T, dh]
        return self.out(attended.transpose(1, 2).reshape(b, -1, d))


@FUSIONS.register("attention")
class AttentionFusion(AlignedFusion):
    """Each projected stream queries the other streams with multi-head attention.

    For modality ``m``: ``h_m' = LayerNorm(h_m + Attention(h_m, others, others))``; the
    output is the mean of the ``h_m'`` present at each frame. Attention lets a video
    frame borrow from nearby audio frames (and back) instead of only the same instant,
    which absorbs small audio-video offsets. A frame whose other streams are absent keeps
    its own ``h_m`` (no attention over nothing).

    Args:
        input_dims: feature size per modality (injected).
        input_rates: frame rate per modality (injected).
        rate: the common output frame rate.
        modality_dropout: training probability of dropping one modality per example.
        dim: the common (output) feature size.
        heads: attention heads (``dim`` must be divisible by it).
        dropout: attention dropout.

    Examples:
        >>> f = AttentionFusion({"audio": 4, "video": 3}, {"audio": 25.0, "video": 25.0}, dim=8, heads=2).eval()
        >>> y, n = f({"audio": (torch.ones(2, 5, 4), torch.tensor([5, 3])),
        ...           "video": (torch.ones(2, 5, 3), torch.tensor([5, 5]))})
        >>> tuple(y.shape), n.tolist()
        ((2, 5, 8), [5, 5])
    """

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float], rate: float = 25.0,
                 modality_dropout: float = 0.0, dim: int = 256, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__(input_dims, input_rates, rate, modality_dropout)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in self.input_dims.items()})
        self.attn = nn.ModuleDict({m: CrossAttention(dim, heads, dropout) for m in self.modalities})
        self.norm = nn.ModuleDict({m: nn.LayerNorm(dim) for m in self.modalities})
        self.output_dim = dim

    def combine(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        h = {m: self.proj[m](features[m]) for m in self.modalities}
        out = torch.zeros_like(h[self.modalities[0]])
        count = torch.zeros_like(out[..., :1])
        for m in self.modalities:
            others = [o for o in self.modalities if o != m]
            own = masks[m].unsqueeze(-1).to(out.dtype)
            if others:
                keys = torch.cat([h[o] for o in others], dim=1)
                key_mask = torch.cat([masks[o] for o in others], dim=1)  # True = may attend
                # Give examples with no key at all one dummy key so softmax stays finite;
                # their result is discarded below.
                no_keys = ~key_mask.any(dim=1, keepdim=True)
                key_mask = key_mask | torch.cat([no_keys, torch.zeros_like(key_mask[:, 1:])], dim=1)
                attended = self.attn[m](h[m], keys, key_mask)
                mixed = self.norm[m](h[m] + attended)
                h_m = torch.where(no_keys.unsqueeze(-1), h[m], mixed)
            else:
                h_m = h[m]
            out = out + h_m * own
            count = count + own
        return out / count.clamp(min=1.0)
