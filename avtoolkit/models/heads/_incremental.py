"""One-token-at-a-time evaluation of a pre-norm ``nn.TransformerDecoder`` with cached keys and values.

A beam search feeds the decoder one new token per hypothesis per step. Re-running
``nn.TransformerDecoder`` on the whole prefix costs ``O(L^2)`` per step and re-projects the
encoder output into cross-attention keys and values every time; here each layer keeps its
self-attention keys/values of the tokens fed so far (``[N, heads, L, head_dim]``) and the
cross-attention keys/values of the memory are projected once (``[1 or N, heads, T, head_dim]``).
The arithmetic is the layer's own (same weights, pre-norm order, eval mode: no dropout), so the
log-probabilities equal the full recomputation's up to float rounding
(``tests/decoding/test_joint_search.py`` checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class DecoderCache:
    """Keys/values per layer: self-attention (grows one token a step) and cross-attention (fixed)."""

    self_k: list[Tensor]
    self_v: list[Tensor]
    cross_k: list[Tensor]
    cross_v: list[Tensor]
    memory_bias: Tensor | None  # [1 or N, 1, 1, T]: -inf on padded memory frames
    length: int  # tokens fed so far

    def select(self, index: Tensor) -> "DecoderCache":
        """The cache of the hypotheses ``index`` (a beam's survivors, repeats allowed)."""
        def cross(t: Tensor) -> Tensor:
            return t if t.shape[0] == 1 else t.index_select(0, index)

        return DecoderCache([k.index_select(0, index) for k in self.self_k],
                            [v.index_select(0, index) for v in self.self_v],
                            [cross(k) for k in self.cross_k], [cross(v) for v in self.cross_v],
                            None if self.memory_bias is None else cross(self.memory_bias), self.length)


def _heads(x: Tensor, heads: int) -> Tensor:
    n, length, dim = x.shape
    return x.view(n, length, heads, dim // heads).transpose(1, 2)


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
    n, heads, _, head_dim = q.shape
    if k.shape[0] == 1 and n > 1 and bias is None:
        # One utterance's memory for every hypothesis: the hypotheses become the query rows of one
        # matmul per head ([H, N, hd] x [H, hd, T]) instead of N broadcast copies of the keys.
        qh = q[:, :, 0].transpose(0, 1)
        w = (qh @ k[0].transpose(-1, -2) / math.sqrt(head_dim)).softmax(-1)
        return (w @ v[0]).transpose(0, 1).reshape(n, 1, heads * head_dim)
    w = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    if bias is not None:
        w = w + bias
    out = w.softmax(-1) @ v  # [N, H, 1, hd]
    return out.transpose(1, 2).reshape(q.shape[0], 1, -1)


def start_cache(decoder: nn.TransformerDecoder, memory: Tensor, memory_lengths: Tensor | None) -> DecoderCache:
    """Project ``memory [B, T, dim]`` into each layer's cross-attention keys/values; no token fed yet."""
    cross_k, cross_v, self_k, self_v = [], [], [], []
    n = memory.shape[0]
    for layer in decoder.layers:
        mha = layer.multihead_attn
        dim = mha.embed_dim
        k = F.linear(memory, mha.in_proj_weight[dim: 2 * dim], mha.in_proj_bias[dim: 2 * dim])
        v = F.linear(memory, mha.in_proj_weight[2 * dim:], mha.in_proj_bias[2 * dim:])
        cross_k.append(_heads(k, mha.num_heads))
        cross_v.append(_heads(v, mha.num_heads))
        empty = memory.new_zeros(n, mha.num_heads, 0, dim // mha.num_heads)
        self_k.append(empty)
        self_v.append(empty)
    bias = None
    if memory_lengths is not None:
        valid = torch.arange(memory.shape[1], device=memory.device)[None] < memory_lengths.to(memory.device)[:, None]
        bias = memory.new_zeros(valid.shape).masked_fill(~valid, float("-inf"))[:, None, None, :]
    return DecoderCache(self_k, self_v, cross_k, cross_v, bias, 0)


def step_cache(decoder: nn.TransformerDecoder, cache: DecoderCache, y: Tensor) -> tuple[Tensor, DecoderCache]:
    """Feed one embedded token per hypothesis (``y [N, 1, dim]``); the decoder's output ``[N, dim]``.

    ``cache`` must hold ``N`` hypotheses (or one, broadcast, before the first token).
    """
    if cache.length == 0 and cache.self_k[0].shape[0] != y.shape[0]:
        cache = cache.select(torch.zeros(y.shape[0], dtype=torch.long, device=y.device))
    self_k, self_v = [], []
    x = y
    for i, layer in enumerate(decoder.layers):
        sa = layer.self_attn
        q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).chunk(3, dim=-1)
        k = torch.cat([cache.self_k[i], _heads(k, sa.num_heads)], dim=2)
        v = torch.cat([cache.self_v[i], _heads(v, sa.num_heads)], dim=2)
        self_k.append(k)
        self_v.append(v)
        # Causality is free: the new token attends to the cached past and itself only.
        x = x + sa.out_proj(_attend(_heads(q, sa.num_heads), k, v, None))
        mha = layer.multihead_attn
        dim = mha.embed_dim
        q = F.linear(layer.norm2(x), mha.in_proj_weight[:dim], mha.in_proj_bias[:dim])
        x = x + mha.out_proj(_attend(_heads(q, mha.num_heads), cache.cross_k[i], cache.cross_v[i],
                                     cache.memory_bias))
        x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
    if decoder.norm is not None:
        x = decoder.norm(x)
    return x[:, 0], DecoderCache(self_k, self_v, cache.cross_k, cache.cross_v, cache.memory_bias, cache.length + 1)
