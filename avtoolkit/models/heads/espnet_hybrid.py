"""``espnet_hybrid``: CTC and ESPnet's Transformer decoder, laid out as auto_avsr's checkpoints are.

ESPnet's vocabulary has the blank at 0 and a start/end token ``<eos>`` as its *last* entry;
avtoolkit's joint search and ``hybrid`` objective use id 0 for both the blank and the end
token. This head keeps ESPnet's layout inside (``vocab_size + 1`` outputs, ``<eos>`` last, so
a converted checkpoint is their tensors renamed, none cut or reordered) and speaks avtoolkit's
convention outside:

* ``log_probs [B, T, vocab_size]``: the CTC log-probabilities without the ``<eos>`` column
  (which CTC never emits; dropping it changes no other column);
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

    def forward(self, y: Tensor, causal: Tensor, memory: Tensor, memory_mask: Tensor | None) -> Tensor:
        h = self.norm1(y)
        y = y + self.dropout(self.self_attn(h, h, h, causal))
        y = y + self.dropout(self.src_attn(self.norm2(y), memory, memory, memory_mask))
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
        dim: decoder width.
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
                 dim: int = 768, ff_dim: int = 3072, dropout: float = 0.1, ctc_dropout: float = 0.1) -> None:
        super().__init__()
        if input_dim != dim:
            raise ValueError(f"espnet_hybrid: the encoder output ({input_dim}) must match the decoder dim ({dim}), "
                             "as in ESPnet (no projection between them)")
        self.eos = vocab_size  # ESPnet's <eos>: the last of vocab_size + 1 outputs
        self.ctc_dropout = nn.Dropout(ctc_dropout)
        self.ctc_lo = nn.Linear(input_dim, vocab_size + 1)
        self.decoder = TransformerDecoder(vocab_size + 1, dim, heads, ff_dim, layers, dropout)
        self.output_dim = vocab_size

    def _to_ours(self, log_probs: Tensor) -> Tensor:
        """ESPnet's ``[..., V + 1]`` decoder log-probabilities to avtoolkit's ``[..., V]`` (eos at column 0)."""
        return torch.cat([log_probs[..., self.eos :], log_probs[..., 1 : self.eos]], dim=-1)

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        ctc = self.ctc_lo(self.ctc_dropout(x)).log_softmax(dim=-1)[..., : self.eos]
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
        if memory.shape[0] == 1 and n > 1:
            memory = memory.expand(n, -1, -1)
            memory_lengths = None if memory_lengths is None else memory_lengths.expand(n)
        mask = None if memory_lengths is None else \
            lengths_to_mask(memory_lengths.to(memory.device), memory.shape[1])[:, None, :]
        espnet_prev = prev.masked_fill(prev == 0, self.eos)
        return self._to_ours(self.decoder(espnet_prev, memory, mask, last_only).log_softmax(dim=-1))

    def decoder_step(self, memory: Tensor, prefixes: Tensor, memory_lengths: Tensor | None = None) -> Tensor:
        """Log-probabilities ``[N, V]`` of the token after each prefix (prefixes start with 0, the start token)."""
        return self.decode(memory, memory_lengths, prefixes.to(memory.device), last_only=True)[:, -1]
