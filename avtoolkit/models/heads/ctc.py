"""``ctc``: per-frame log-probabilities over the character vocabulary."""

from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn

from avtoolkit.data.text import CHARACTERS
from avtoolkit.models.contract import Head
from avtoolkit.registry.kinds import HEADS


@HEADS.register("ctc")
class CTCHead(Head):
    """Linear layer to the CTC vocabulary, then log-softmax.

    The default vocabulary is :data:`avtoolkit.data.text.CHARACTERS`: blank (id 0), space,
    apostrophe and a-z, 29 tokens.

    Args:
        input_dim: feature size of the incoming sequence (injected).
        vocab_size: number of CTC tokens including the blank.
        dropout: dropout before the linear layer.

    Examples:
        >>> import torch
        >>> head = CTCHead(input_dim=16)
        >>> out = head(torch.randn(2, 7, 16), torch.tensor([7, 4]), {})
        >>> tuple(out["log_probs"].shape), out["lengths"].tolist()
        ((2, 7, 29), [7, 4])
        >>> bool(torch.allclose(out["log_probs"].exp().sum(-1), torch.ones(2, 7)))
        True
    """

    task = "ctc"

    def __init__(self, input_dim: int, vocab_size: int = len(CHARACTERS), dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(input_dim, vocab_size)
        self.output_dim = vocab_size

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {"log_probs": self.proj(self.dropout(x)).log_softmax(dim=-1), "lengths": lengths}
