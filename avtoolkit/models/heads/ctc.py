"""``ctc``: per-frame log-probabilities over the character vocabulary."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from avtoolkit.data.text import CHARACTERS
from avtoolkit.models.contract import Head
from avtoolkit.registry.kinds import HEADS

log = logging.getLogger(__name__)


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
        self._reported: set[str] = set()

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        if "target_lengths" in batch and not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            self._report_too_long(lengths, batch)
        return {"log_probs": self.proj(self.dropout(x)).log_softmax(dim=-1), "lengths": lengths}

    def _report_too_long(self, lengths: Tensor, batch: Mapping[str, Any]) -> None:
        """Warns (once per utterance) about transcripts CTC cannot align to the model's frames.

        CTC needs a frame per character plus one per doubled letter ("ll"); a longer transcript
        has an infinite loss, which ``zero_infinity`` turns into zero: the utterance would
        silently teach nothing.
        """
        targets, target_lengths = batch["targets"], batch["target_lengths"]
        repeats = targets[:, 1:] == targets[:, :-1]
        inside = torch.arange(repeats.shape[1], device=targets.device) < (target_lengths[:, None] - 1)
        needed = target_lengths + (repeats & inside).sum(dim=1)
        too_long = needed > lengths.to(needed.device)
        if not bool(too_long.any()):
            return
        ids, sources = batch.get("ids"), batch.get("sources")
        for b in too_long.nonzero().flatten().tolist():
            name = str(ids[b]) if ids is not None else f"batch item {b}"
            if name in self._reported:
                continue
            self._reported.add(name)
            where = f"{sources[b]}: " if sources is not None else ""
            log.warning("%sutterance '%s': its transcript needs %d CTC frames but the model gives %d for this "
                        "input, so its loss is zeroed and it teaches nothing; shorten the transcript or drop "
                        "the line", where, name, int(needed[b]), int(lengths[b]))
