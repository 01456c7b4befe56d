"""Encoder ``token_embedding``: token ids of text to vectors, the input part of a language model."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from avtoolkit.data.text import CHARACTERS
from avtoolkit.models.contract import Encoder
from avtoolkit.registry.kinds import ENCODERS


@ENCODERS.register("token_embedding")
class TokenEmbedding(Encoder):
    """A learnt vector per token id of ``batch["text"]`` (the recipe's tokens, blank/start first).

    The text datasets (``grid_text``, ``text``) put each sentence there as its start token (id 0,
    the CTC blank, which is also the end token) followed by its token ids, with ``text_lengths``.
    Time is token positions, not frames, so the rates are nominal (one output per input).

    Args:
        vocab_size: tokens including the blank; filled in from the dataset's vocabulary by
            ``avtoolkit run`` (like the head's), so the LM shares the ASR model's tokens.
        dim: embedding width.
        dropout: on the embeddings, in training.

    Examples:
        >>> import torch
        >>> emb = TokenEmbedding(dim=8)
        >>> y, n = emb(torch.tensor([[0, 5, 6], [0, 7, 0]]), torch.tensor([3, 2]))
        >>> tuple(y.shape), n.tolist(), emb.modality
        ((2, 3, 8), [3, 2], 'text')
    """

    modality: ClassVar[str] = "text"

    def __init__(self, vocab_size: int = len(CHARACTERS), dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, dim)
        self.dropout = nn.Dropout(dropout)
        self.output_dim = dim

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.dropout(self.embed(x.long())), lengths
