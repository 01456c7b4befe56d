"""The ``ctc`` objective: a transcript per example, aligned by CTC (sentences, GRID, AV-ASR)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from torch import Tensor

from avtoolkit.objectives._transcripts import TranscriptObjective, greedy_ctc
from avtoolkit.objectives.base import Logged
from avtoolkit.recipe.schema import DecodingConfig, section
from avtoolkit.registry.kinds import OBJECTIVES


@OBJECTIVES.register("ctc")
class CTC(TranscriptObjective):
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
        super().__init__(vocabulary, loss)
        #: the test-time decoder ``(log_probs, lengths) -> texts``; ``None``: greedy
        self.test_decoder: Callable[[Tensor, Tensor], list[str]] | None = None

    def loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        return self.ctc_loss(out, batch)

    def evaluate(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str,
                 rows: list[dict[str, Any]] | None = None) -> list[Logged]:
        log_probs = out["log_probs"]
        hyps, scores = greedy_ctc(log_probs.float(), out["lengths"], self.vocab)
        if stage == "test" and self.test_decoder is not None:
            hyps = self.test_decoder(log_probs.float().cpu(), out["lengths"].cpu())
        return self.score_transcripts(batch, stage, hyps, scores, rows)

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
