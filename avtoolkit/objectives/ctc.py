"""The ``ctc`` objective: a transcript per example, aligned by CTC (sentences, GRID, AV-ASR)."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from avtoolkit.data.text import CharVocab
from avtoolkit.objectives.base import STAGES, Logged, Objective, example_id
from avtoolkit.recipe.schema import DecodingConfig, section
from avtoolkit.registry.kinds import OBJECTIVES


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


@OBJECTIVES.register("ctc")
class CTC(Objective):
    """CTC loss on log_probs [B, T, V] (blank 0); WER and CER of greedy decoding, of the recipe's decoder at test.

    Reads ``batch["targets"]`` and ``target_lengths``; ``loss.zero_infinity`` of the recipe
    applies. Logs ``wer`` and ``cer``; a prediction row holds the transcript and the best
    path's mean log-probability per frame.
    """

    monitor = ("val/wer", "min")
    outputs = {"log_probs": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}
    commands = ("transcribe", "noise-eval")
    usage = "`avtoolkit transcribe` (a CTC model, e.g. recipes/avasr.yaml)"

    def __init__(self, vocabulary: Sequence[str], loss: Mapping[str, Any] | None = None) -> None:
        import torchmetrics

        super().__init__(vocabulary, loss)
        self.zero_infinity = bool(self.settings.zero_infinity)
        self.vocab = CharVocab(self.vocabulary)
        #: the test-time decoder ``(log_probs, lengths) -> texts``; ``None``: greedy
        self.test_decoder: Callable[[Tensor, Tensor], list[str]] | None = None
        self.wer = nn.ModuleDict({s: torchmetrics.text.WordErrorRate() for s in STAGES})
        self.cer = nn.ModuleDict({s: torchmetrics.text.CharErrorRate() for s in STAGES})

    def loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        log_probs = out["log_probs"].float().transpose(0, 1)  # CTC wants [T, B, V]
        return F.ctc_loss(log_probs, batch["targets"], out["lengths"], batch["target_lengths"],
                          blank=0, reduction="mean", zero_infinity=self.zero_infinity)

    def evaluate(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str,
                 rows: list[dict[str, Any]] | None = None) -> list[Logged]:
        log_probs = out["log_probs"]
        hyps, scores = greedy_ctc(log_probs.float(), out["lengths"], self.vocab)
        if stage == "test" and self.test_decoder is not None:
            hyps = self.test_decoder(log_probs.float().cpu(), out["lengths"].cpu())
        refs = references(batch, self.vocab)
        self.wer[stage].update(hyps, refs)
        self.cer[stage].update(hyps, refs)
        if rows is not None:
            for i, (h, r, s) in enumerate(zip(hyps, refs, scores)):
                rows.append({"id": example_id(batch, i), "reference": r, "prediction": h,
                             "score": round(s, 6) if math.isfinite(s) else s})
        return [Logged("wer", self.wer[stage], prog_bar=True), Logged("cer", self.cer[stage])]

    @classmethod
    def build_decoder(cls, decoding: Mapping[str, Any] | None, vocabulary: Sequence[str],
                      model: Any = None) -> Callable[[Mapping[str, Tensor]], list[str]]:
        """The CTC decoder ``decoding`` names (:func:`~avtoolkit.decoding.ctc_search.build_decoder`) over ``log_probs``."""
        from avtoolkit.decoding.ctc_search import build_decoder

        decoder = build_decoder(decoding, vocabulary)
        return lambda out: decoder(out["log_probs"], out["lengths"])

    def prepare_test(self, decoding: Mapping[str, Any]) -> None:
        decoding = dict(decoding or {})
        if section(DecodingConfig, decoding).name != "greedy" and self.test_decoder is None:
            from avtoolkit.decoding.ctc_search import build_decoder  # another module; heavy and optional

            self.test_decoder = build_decoder(decoding, self.vocabulary)
