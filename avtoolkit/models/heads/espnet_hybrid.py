"""``espnet_hybrid``: CTC and ESPnet's Transformer decoder, laid out as auto_avsr's checkpoints are.

ESPnet's vocabulary has the blank at 0 and a start/end token ``<eos>`` as its *last* entry;
avtoolkit's joint search and ``hybrid`` objective use id 0 for both the blank and the end
token. This head keeps ESPnet's layout inside (``vocab_size + 1`` outputs, ``<eos>`` last, so
a converted checkpoint is their tensors renamed, none cut or reordered) and speaks avtoolkit's
convention outside:

* ``log_probs [B, T, vocab_size]``: the CTC log-probabilities over every token but ``<eos>``
  (normalised over them, as every CTC consumer expects; ``<eos>`` is never a CTC target, so a
  trained model gives it no mass and this equals ESPnet's log-softmax to float32 rounding);
* decoder scores ``[N, vocab_size]``: column 0 is ``log p(<eos>)``, the other columns are the
  tokens; ESPnet's own log-softmax runs over all ``vocab_size + 1`` outputs, so the numbers are
  theirs exactly (the decoder's blank output, never a target, is left out of the columns);
* prefixes given with start token 0 are fed to the decoder as ``<eos>``, as ESPnet starts them.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from avtoolkit.data.text import CHARACTERS
from avtoolkit.models.backends._espnet_attention import FeedForward, MultiHeadAttention, sinusoid_table
from avtoolkit.models.backends.espnet_conformer import layer_norm
from avtoolkit.models.contract import Head, lengths_to_mask
from avtoolkit.registry.kinds import HEADS


class DecoderLayer(nn.Module):
    """Pre-norm causal self-attention, cross-attention to the encoder output, feed-forward."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(dim, heads, dropout)
        self.src_attn = MultiHeadAttention(dim, heads, dropout)
        self.feed_forward = FeedForward(dim, ff_dim, dropout)
        self.norm1, self.norm2, self.norm3 = layer_norm(dim), layer_norm(dim), layer_norm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, y: Tensor, causal: Tensor | None, memory: Tensor, memory_mask: Tensor | None,
                memory_kv: tuple[Tensor, Tensor] | None = None, last: int = 0) -> Tensor:
        """``last``: compute only the last ``last`` positions (their queries attend to all of ``y``)."""
        h = self.norm1(y)
        q, residual = (h[:, -last:], y[:, -last:]) if last else (h, y)
        y = residual + self.dropout(self.self_attn(q, h, h, causal))
        y = y + self.dropout(self.src_attn(self.norm2(y), memory, memory, memory_mask, kv=memory_kv))
        return y + self.dropout(self.feed_forward(self.norm3(y)))


class TransformerDecoder(nn.Module):
    """Token embedding (scaled by ``sqrt(dim)``) plus absolute sinusoids, decoder layers, LayerNorm, output layer."""

    def __init__(self, outputs: int, dim: int, heads: int, ff_dim: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Embedding(outputs, dim))
        self.decoders = nn.ModuleList(DecoderLayer(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.after_norm = layer_norm(dim)
        self.output_layer = nn.Linear(dim, outputs)
        self.dropout = nn.Dropout(dropout)
        self.dim = dim

    def forward(self, prev: Tensor, memory: Tensor, memory_mask: Tensor | None, last_only: bool = False) -> Tensor:
        """Logits ``[N, L, outputs]`` after every prefix position of ``prev [N, L]`` (ESPnet ids).

        ``last_only``: the logits after the last position only (``[N, 1, outputs]``): a search step
        needs no more, and the output layer is the widest matrix of the decoder (768 x 5049).
        """
        length = prev.shape[1]
        positions = sinusoid_table(torch.arange(length), self.dim).to(memory.device, memory.dtype)
        y = self.dropout(self.embed(prev) * math.sqrt(self.dim) + positions[None])
        causal = torch.ones(length, length, dtype=torch.bool, device=prev.device).tril()[None]
        for layer in self.decoders:
            y = layer(y, causal, memory, memory_mask)
        return self.output_layer(self.after_norm(y[:, -1:] if last_only else y))


class _StepCache:
    """What one search over one utterance has computed: the memory's projected keys/values per layer,
    and per prefix the input of every decoder layer at each of its positions.

    A search extends each hypothesis by one token per step, so a prefix's states are its parent's
    plus one position: each step runs the decoder on one position per hypothesis, as ESPnet's
    cached ``batch_score`` does, instead of the whole prefix again.
    """

    def __init__(self, memory: Tensor) -> None:
        self.memory = memory  # held, so the identity check below cannot meet a recycled id
        self.kv: list[tuple[Tensor, Tensor]] | None = None
        self.states: dict[tuple[int, ...], list[Tensor]] = {}

    def matches(self, memory: Tensor) -> bool:
        return memory is self.memory


@HEADS.register("espnet_hybrid")
class ESPnetHybridHead(Head):
    """Hybrid CTC/attention head with ESPnet's decoder (objective ``hybrid``; auto_avsr's layout).

    auto_avsr's base model: ``layers=6, heads=12, dim=768, ff_dim=3072`` on a 768-dim encoder.
    Their ``vocab_size`` is 5048 (blank and 5047 SentencePiece units; their ``<eos>`` is the
    extra output this head adds).

    Args:
        input_dim: encoder output size (injected); the decoder attends to it directly, so it
            must equal ``dim``.
        vocab_size: tokens including the blank (avtoolkit's count; ESPnet's ``odim`` minus 1).
        layers: decoder layers.
        heads: attention heads.
        dim: decoder width (default and only value: ``input_dim``; stated in recipes to be checked).
        ff_dim: feed-forward width.
        dropout: dropout inside the decoder.
        ctc_dropout: dropout before the CTC projection.

    Examples:
        >>> import torch
        >>> head = ESPnetHybridHead(input_dim=16, vocab_size=7, layers=1, heads=2, dim=16, ff_dim=32).eval()
        >>> batch = {"targets": torch.tensor([[3, 4], [5, 0]]), "target_lengths": torch.tensor([2, 1])}
        >>> out = head(torch.randn(2, 6, 16), torch.tensor([6, 4]), batch)
        >>> tuple(out["log_probs"].shape), tuple(out["att_log_probs"].shape)
        ((2, 6, 7), (2, 3, 7))
        >>> tuple(head.decoder_step(out["memory"][:1], torch.zeros(3, 1, dtype=torch.long)).shape)
        (3, 7)
    """

    task = "hybrid"

    def __init__(self, input_dim: int, vocab_size: int = len(CHARACTERS), layers: int = 6, heads: int = 12,
                 dim: int | None = None, ff_dim: int = 3072, dropout: float = 0.1, ctc_dropout: float = 0.1) -> None:
        super().__init__()
        dim = dim or input_dim
        if input_dim != dim:
            raise ValueError(f"espnet_hybrid: the encoder output ({input_dim}) must match the decoder dim ({dim}), "
                             "as in ESPnet (no projection between them)")
        self.eos = vocab_size  # ESPnet's <eos>: the last of vocab_size + 1 outputs
        self.ctc_dropout = nn.Dropout(ctc_dropout)
        self.ctc_lo = nn.Linear(input_dim, vocab_size + 1)
        self.decoder = TransformerDecoder(vocab_size + 1, dim, heads, ff_dim, layers, dropout)
        self.output_dim = vocab_size
        self._cache: _StepCache | None = None

    def _to_ours(self, log_probs: Tensor) -> Tensor:
        """ESPnet's ``[..., V + 1]`` decoder log-probabilities to avtoolkit's ``[..., V]`` (eos at column 0)."""
        return torch.cat([log_probs[..., self.eos :], log_probs[..., 1 : self.eos]], dim=-1)

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        ctc = self.ctc_lo(self.ctc_dropout(x))[..., : self.eos].log_softmax(dim=-1)
        out = {"log_probs": ctc, "lengths": lengths, "memory": x}
        if "targets" in batch and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            targets, target_lengths = batch["targets"], batch["target_lengths"]
            inside = torch.arange(targets.shape[1], device=targets.device)[None] < target_lengths[:, None]
            prev = torch.cat([torch.zeros_like(targets[:, :1]), targets.masked_fill(~inside, 0)], 1)
            out["att_log_probs"] = self.decode(x, lengths, prev)
        return out

    def decode(self, memory: Tensor, memory_lengths: Tensor | None, prev: Tensor, last_only: bool = False) -> Tensor:
        """Next-token log-probabilities ``[N, L, V]`` (avtoolkit ids) at every position of ``prev [N, L]``."""
        n = prev.shape[0]
        if memory.shape[0] == 1 and n > 1 and memory_lengths is not None:
            memory_lengths = memory_lengths.expand(n)
        mask = None if memory_lengths is None else \
            lengths_to_mask(memory_lengths.to(memory.device), memory.shape[1])[:, None, :]
        espnet_prev = prev.masked_fill(prev == 0, self.eos)
        return self._to_ours(self.decoder(espnet_prev, memory, mask, last_only).log_softmax(dim=-1))

    def decoder_step(self, memory: Tensor, prefixes: Tensor, memory_lengths: Tensor | None = None) -> Tensor:
        """Log-probabilities ``[N, V]`` of the token after each prefix (prefixes start with 0, the start token).

        Outside training, successive calls with the same ``memory`` tensor (one utterance, ``[1, T, D]``)
        reuse the memory's keys/values and each prefix's parent states, so a step costs one position
        per hypothesis; the numbers are those of the full computation (to float32 rounding).
        """
        prefixes = prefixes.to(memory.device)
        if self.training or memory.shape[0] != 1 or memory_lengths is not None:
            return self.decode(memory, memory_lengths, prefixes, last_only=True)[:, -1]
        return self._cached_step(memory, prefixes)

    def _cached_step(self, memory: Tensor, prefixes: Tensor) -> Tensor:
        dec = self.decoder
        if self._cache is None or not self._cache.matches(memory):
            self._cache = _StepCache(memory)
            self._cache.kv = [layer.src_attn.project_kv(memory, memory) for layer in dec.decoders]
        cache = self._cache
        rows = [tuple(r) for r in prefixes.tolist()]
        parents = [cache.states.get(r[:-1]) for r in rows]
        length = prefixes.shape[1]
        espnet_prev = prefixes.masked_fill(prefixes == 0, self.eos)
        if length == 1 or any(p is None for p in parents):  # no parent states: the whole prefix, once
            positions = sinusoid_table(torch.arange(length), dec.dim).to(memory.device, memory.dtype)
            x = dec.embed(espnet_prev) * math.sqrt(dec.dim) + positions[None]
            causal = torch.ones(length, length, dtype=torch.bool, device=memory.device).tril()[None]
            inputs = []
            for layer, kv in zip(dec.decoders, cache.kv or []):
                inputs.append(x)
                x = layer(x, causal, memory, None, memory_kv=kv)
            last = x[:, -1:]
        else:
            position = sinusoid_table(torch.tensor([length - 1]), dec.dim).to(memory.device, memory.dtype)
            x = dec.embed(espnet_prev[:, -1:]) * math.sqrt(dec.dim) + position[None]
            inputs = []
            for i, (layer, kv) in enumerate(zip(dec.decoders, cache.kv or [])):
                full = torch.cat([torch.stack([p[i] for p in parents]), x], dim=1)  # type: ignore[index]
                inputs.append(full)
                x = layer(full, None, memory, None, memory_kv=kv, last=1)
            last = x
        states = {r: [inp[j] for inp in inputs] for j, r in enumerate(rows)}
        cache.states = states  # the next step extends only these
        logits = dec.output_layer(dec.after_norm(last))
        return self._to_ours(logits.log_softmax(dim=-1))[:, -1]
