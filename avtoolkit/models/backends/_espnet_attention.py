"""Attention blocks laid out as ESPnet names them, so ESPnet-family checkpoints (auto_avsr) load as they are.

The parameter names (``linear_q``, ``linear_pos``, ``pos_bias_u``, ``w_1`` ...) are the ones in
those checkpoints; the arithmetic is written here on ``scaled_dot_product_attention``. The
relative-position attention follows Transformer-XL (Dai et al., 2019, appendix B) in ESPnet's
"new" form: a score for every query/key pair from content (``q + u``) and from the signed
distance between them (``q + v`` against an embedding of each distance), the distances
``T-1 .. -(T-1)`` read off one table by a shift.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoid_table(positions: Tensor, dim: int) -> Tensor:
    """``[len(positions), dim]``: sine on even channels, cosine on odd, wavelengths up to 10000 * 2 pi.

    Examples:
        >>> sinusoid_table(torch.tensor([0.0]), 4).tolist()
        [[0.0, 1.0, 0.0, 1.0]]
    """
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angle = positions.float()[:, None] * freq[None]
    table = torch.zeros(len(positions), dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(angle), torch.cos(angle)
    return table


def relative_positions(length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """``[1, 2 * length - 1, dim]``: the embeddings of distances ``length - 1`` down to ``-(length - 1)``."""
    return sinusoid_table(torch.arange(length - 1, -length, -1), dim)[None].to(device)


class FeedForward(nn.Module):
    """``w_2(relu(w_1(x)))``: the position-wise feed-forward block (its dropout between the two)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(self.dropout(torch.relu(self.w_1(x))))


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over ``heads`` heads, with separate q/k/v/out projections.

    ``mask`` is boolean, True where a key may be attended: ``[B, 1, T_k]`` or ``[B, T_q, T_k]``.
    ``bias`` (relative-position scores, already scaled) is added to the logits.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.dropout = dropout

    def _split(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], -1, self.heads, self.head_dim).transpose(1, 2)  # [B, H, T, d]

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, bias: Tensor | None = None) -> Tensor:
        """Heads-split ``q, k, v`` to the projected output ``[B, T_q, dim]``."""
        logits_bias = bias
        if mask is not None:
            blocked = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, float("-inf"))
            blocked = blocked[:, None]  # broadcast over heads
            logits_bias = blocked if logits_bias is None else logits_bias + blocked
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_bias,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.linear_out(y.transpose(1, 2).reshape(q.shape[0], -1, self.heads * self.head_dim))

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Heads-split key and value projections (cacheable: a decoder's memory is the same every step)."""
        return self._split(self.linear_k(key)), self._split(self.linear_v(value))

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None,
                kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``kv``: :meth:`project_kv` of ``key``/``value``, done once; a batch of 1 serves every query row."""
        q = self._split(self.linear_q(query))
        k, v = kv if kv is not None else self.project_kv(key, value)
        if k.shape[0] == 1 and q.shape[0] > 1:  # one utterance's memory for many hypotheses: projected once
            k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
        return self.attend(q, k, v, mask)


class RelPositionAttention(MultiHeadAttention):
    """Self-attention with relative-position scores (Transformer-XL's ``u``, ``v`` biases)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__(dim, heads, dropout)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(heads, dim // heads))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, dim // heads))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, x: Tensor, positions: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """``x [B, T, dim]``, ``positions [1, 2T - 1, dim]`` (:func:`relative_positions`)."""
        length = x.shape[1]
        q = self.linear_q(x).view(x.shape[0], -1, self.heads, self.head_dim)  # [B, T, H, d]
        k, v = self._split(self.linear_k(x)), self._split(self.linear_v(x))
        p = self._split(self.linear_pos(positions))  # [1, H, 2T - 1, d]
        by_distance = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))  # [B, H, T, 2T-1]
        # Row i holds distances T-1-j' for j' = 0..2T-2; key j sits at distance i - j, i.e. column T-1-i+j.
        index = (torch.arange(length, device=x.device)[None, :] - torch.arange(length, device=x.device)[:, None]
                 + length - 1)
        bias = by_distance.gather(-1, index[None, None].expand(*by_distance.shape[:2], -1, -1))
        # the content term goes through sdpa (which scales q.k); the position term is scaled here alike
        return self.attend((q + self.pos_bias_u).transpose(1, 2), k, v, mask, bias / math.sqrt(self.head_dim))
