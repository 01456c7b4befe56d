"""Head ``lm``: next-token log-probabilities at every position (task ``language_model``)."""

from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn

from avtoolkit.data.text import CHARACTERS
from avtoolkit.models.contract import Head
from avtoolkit.registry.kinds import HEADS


@HEADS.register("lm")
class LanguageModelHead(Head):
    """Linear layer to the token vocabulary, then log-softmax: ``log p(next token | tokens so far)``.

    Position ``t`` of the output scores the token after input ``t``; token 0 (the blank) is the
    end of the sentence, as in the attention decoder, so a model of this head scores exactly the
    sentences a joint search grows (``decoding.lm``).

    Args:
        input_dim: feature size of the incoming sequence (injected).
        vocab_size: tokens including the blank (filled in from the dataset by ``avtoolkit run``).
        dropout: before the linear layer, in training.

    Examples:
        >>> import torch
        >>> head = LanguageModelHead(input_dim=16)
        >>> out = head(torch.randn(2, 5, 16), torch.tensor([5, 3]), {})
        >>> tuple(out["log_probs"].shape), out["lengths"].tolist()
        ((2, 5, 29), [5, 3])
    """

    task = "language_model"

    def __init__(self, input_dim: int, vocab_size: int = len(CHARACTERS), dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(input_dim, vocab_size)
        self.output_dim = vocab_size

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        return {"log_probs": self.proj(self.dropout(x)).log_softmax(dim=-1), "lengths": lengths}
