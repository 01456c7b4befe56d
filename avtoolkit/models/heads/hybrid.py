"""``hybrid_ctc_attention``: a CTC projection and a Transformer decoder on the same encoder output."""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from avtoolkit.data.text import CHARACTERS
from avtoolkit.models.backends.transformer import sinusoidal_positions
from avtoolkit.models.contract import Head, lengths_to_mask
from avtoolkit.registry.kinds import HEADS

#: the decoder's start and end token: the CTC blank, which is never a target character.
SOS_EOS = 0


@HEADS.register("hybrid_ctc_attention")
class HybridCTCAttentionHead(Head):
    """CTC log-probabilities plus a Transformer decoder (hybrid CTC/attention, objective ``hybrid``).

    The CTC branch is the ``ctc`` head (same outputs: ``log_probs [B, T, V]``, ``lengths``), so
    greedy and beam CTC decoding, export and every CTC tool keep working. The decoder is a stack
    of pre-norm Transformer decoder layers: causal self-attention over the characters so far,
    cross-attention to the encoder output (``memory``, projected to ``dim``), feed-forward. Its
    vocabulary is the CTC one, with the blank (id 0) as start and end token (as in ESPnet).

    With ``targets`` in the batch (training, validation), the output also holds the decoder's
    teacher-forced ``att_log_probs [B, U + 1, V]``: inputs ``sos y_1 .. y_U``, predicting
    ``y_1 .. y_U eos``. :meth:`decoder_step` scores next tokens for decoding.

    Args:
        input_dim: feature size of the incoming sequence (injected).
        vocab_size: tokens including the blank.
        dropout: dropout before the CTC projection.
        layers: decoder layers.
        heads: attention heads.
        dim: decoder width.
        ff_dim: feed-forward width.
        decoder_dropout: dropout inside the decoder.

    Examples:
        >>> import torch
        >>> head = HybridCTCAttentionHead(input_dim=16, layers=1, heads=2, dim=16, ff_dim=32)
        >>> batch = {"targets": torch.tensor([[3, 4], [5, 0]]), "target_lengths": torch.tensor([2, 1])}
        >>> out = head(torch.randn(2, 7, 16), torch.tensor([7, 4]), batch)
        >>> tuple(out["log_probs"].shape), tuple(out["att_log_probs"].shape), tuple(out["memory"].shape)
        ((2, 7, 29), (2, 3, 29), (2, 7, 16))
        >>> tuple(head.decoder_step(out["memory"][:1], torch.zeros(3, 1, dtype=torch.long)).shape)
        (3, 29)
        >>> logp, state = head.eval().step_state(head.init_state(out["memory"][:1]), torch.zeros(3, dtype=torch.long))
        >>> tuple(logp.shape), state.length
        ((3, 29), 1)
    """

    task = "hybrid"

    def __init__(self, input_dim: int, vocab_size: int = len(CHARACTERS), dropout: float = 0.0, layers: int = 2,
                 heads: int = 4, dim: int = 256, ff_dim: int = 1024, decoder_dropout: float = 0.1) -> None:
        # A sibling module, imported here: at module level it would be half-imported whenever the
        # registry loads this folder from ctc.py's own registration.
        from avtoolkit.models.heads.ctc import CTCHead

        super().__init__()
        self.ctc = CTCHead(input_dim, vocab_size=vocab_size, dropout=dropout)
        self.memory_proj = nn.Linear(input_dim, dim) if input_dim != dim else nn.Identity()
        self.embed = nn.Embedding(vocab_size, dim)
        layer = nn.TransformerDecoderLayer(dim, heads, ff_dim, decoder_dropout, batch_first=True, norm_first=True)
        # enable_nested_tensor only concerns encoders; decoders take the layer as it is.
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(dim))
        self.out = nn.Linear(dim, vocab_size)
        self.dim = dim
        self.output_dim = vocab_size

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        out = self.ctc(x, lengths, batch)
        out["memory"] = self.memory_proj(x)
        if "targets" in batch and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            targets, target_lengths = batch["targets"], batch["target_lengths"]
            inside = torch.arange(targets.shape[1], device=targets.device)[None] < target_lengths[:, None]
            prev = torch.cat([torch.full_like(targets[:, :1], SOS_EOS), targets.masked_fill(~inside, SOS_EOS)], 1)
            out["att_log_probs"] = self.decode(out["memory"], lengths, prev)
        return out

    def decode(self, memory: Tensor, memory_lengths: Tensor | None, prev: Tensor) -> Tensor:
        """Next-token log-probabilities ``[N, L, V]`` at every position of the prefixes ``prev [N, L]``.

        ``memory`` may hold one utterance for all ``N`` prefixes (``[1, T, dim]``) or one each.
        """
        n, length = prev.shape
        if memory.shape[0] == 1 and n > 1:
            memory = memory.expand(n, -1, -1)
            memory_lengths = None if memory_lengths is None else memory_lengths.expand(n)
        pad = None if memory_lengths is None else ~lengths_to_mask(memory_lengths.to(memory.device), memory.shape[1])
        y = self.embed(prev) * math.sqrt(self.dim) + sinusoidal_positions(length, self.dim, prev.device)
        causal = torch.triu(torch.full((length, length), float("-inf"), device=prev.device), diagonal=1)
        h = self.decoder(y, memory, tgt_mask=causal, memory_key_padding_mask=pad)
        return self.out(h).log_softmax(dim=-1)

    def decoder_step(self, memory: Tensor, prefixes: Tensor, memory_lengths: Tensor | None = None) -> Tensor:
        """Log-probabilities ``[N, V]`` of the token after each prefix (prefixes start with the start token)."""
        return self.decode(memory, memory_lengths, prefixes.to(memory.device))[:, -1]

    # Incremental decoding (the decoder-step interface of avtoolkit.decoding.joint_search): the
    # search keeps one opaque state per hypothesis and feeds one token at a time.
    def init_state(self, memory: Tensor, memory_lengths: Tensor | None = None) -> Any:
        """The state before any token: ``memory [B, T, dim]`` projected once into cross-attention keys/values."""
        from avtoolkit.models.heads._incremental import start_cache

        return start_cache(self.decoder, memory, memory_lengths)

    def step_state(self, state: Any, tokens: Tensor) -> tuple[Tensor, Any]:
        """Feed ``tokens [N]`` (one per hypothesis); the next token's log-probabilities ``[N, V]`` and the new state.

        Equals :meth:`decoder_step` on the prefixes fed so far (up to float rounding), at the cost of one position.
        """
        from avtoolkit.models.heads._incremental import step_cache

        tokens = tokens.to(self.embed.weight.device)
        y = self.embed(tokens)[:, None] * math.sqrt(self.dim)
        table = getattr(self, "_positions", None)
        if table is None or table.shape[0] <= state.length or table.device != tokens.device:
            # One table for all steps (plain attribute, not a buffer: it is no part of the weights).
            table = self._positions = sinusoidal_positions(max(256, 2 * state.length + 2), self.dim, tokens.device)
        y = y + table[state.length]
        h, state = step_cache(self.decoder, state, y)
        return self.out(h).log_softmax(dim=-1), state

    def select_state(self, state: Any, index: Tensor) -> Any:
        """The state of hypotheses ``index [N']`` of ``state`` (the beam's survivors, repeats allowed)."""
        return state.select(index.to(self.embed.weight.device))
