"""What the objectives that write transcripts share: CTC loss, references, WER/CER and prediction rows.

A private module (the registry imports only public ones), so ``ctc`` and ``hybrid`` both build
on :class:`TranscriptObjective` without one objective's module importing the other's.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from avtoolkit.data.text import CharVocab
from avtoolkit.objectives.base import STAGES, Logged, Objective, example_id


def greedy_ctc(log_probs: Tensor, lengths: Tensor, vocab: CharVocab) -> tuple[list[str], list[float]]:
    """Best-path CTC transcripts and each path's mean log-probability per frame.

    The texts come from the same :class:`~avtoolkit.decoding.ctc_search.GreedyDecoder` that
    test-time greedy decoding uses, so validation and test WER read transcripts alike.
    """
    from avtoolkit.decoding.ctc_search import GreedyDecoder

    texts = GreedyDecoder(vocab.tokens)(log_probs, lengths)
    best = log_probs.max(dim=-1).values
    scores = [float(best[b, : int(n)].mean()) if int(n) > 0 else float("-inf") for b, n in enumerate(lengths)]
    return texts, scores


def references(batch: Mapping[str, Any], vocab: CharVocab) -> list[str]:
    """The batch's transcripts: its ``texts``, else its ``targets`` spelled back."""
    if batch.get("texts") is not None:
        return [str(t) for t in batch["texts"]]
    targets, lengths = batch["targets"], batch["target_lengths"]
    return [vocab.decode(targets[b, : int(lengths[b])].tolist()) for b in range(targets.shape[0])]


class TranscriptObjective(Objective):
    """An objective whose predictions are transcripts: the CTC branch's loss and WER/CER per stage."""

    def __init__(self, vocabulary: Sequence[str], loss: Mapping[str, Any] | None = None) -> None:
        import torchmetrics

        super().__init__(vocabulary, loss)
        self.zero_infinity = bool(self.settings.zero_infinity)
        self.vocab = CharVocab(self.vocabulary)
        self.wer = nn.ModuleDict({s: torchmetrics.text.WordErrorRate() for s in STAGES})
        self.cer = nn.ModuleDict({s: torchmetrics.text.CharErrorRate() for s in STAGES})

    def ctc_loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        """CTC on ``log_probs [B, T, V]`` (blank 0, mean over the batch, ``loss.zero_infinity``)."""
        log_probs = out["log_probs"].float().transpose(0, 1)  # CTC wants [T, B, V]
        return F.ctc_loss(log_probs, batch["targets"], out["lengths"], batch["target_lengths"],
                          blank=0, reduction="mean", zero_infinity=self.zero_infinity)

    def score_transcripts(self, batch: Mapping[str, Any], stage: str, hyps: Sequence[str],
                          scores: Sequence[float], rows: list[dict[str, Any]] | None) -> list[Logged]:
        """Updates ``stage``'s WER and CER with ``hyps``, appends prediction rows, says what to log."""
        refs = references(batch, self.vocab)
        self.wer[stage].update(list(hyps), refs)
        self.cer[stage].update(list(hyps), refs)
        if rows is not None:
            for i, (h, r, s) in enumerate(zip(hyps, refs, scores)):
                rows.append({"id": example_id(batch, i), "reference": r, "prediction": h,
                             "score": round(s, 6) if math.isfinite(s) else s})
        return [Logged("wer", self.wer[stage], prog_bar=True), Logged("cer", self.cer[stage])]
