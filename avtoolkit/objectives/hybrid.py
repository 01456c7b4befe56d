"""The ``hybrid`` objective: CTC and an attention decoder trained together (head ``hybrid_ctc_attention``)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from avtoolkit.objectives._transcripts import TranscriptObjective, greedy_ctc, references
from avtoolkit.objectives.base import Logged
from avtoolkit.recipe.schema import DecodingConfig, section
from avtoolkit.registry.kinds import OBJECTIVES

#: decoder names that run the attention decoder (the others read the CTC branch alone).
ATTENTION_DECODERS = ("attention", "joint")


def attention_targets(targets: Tensor, target_lengths: Tensor, eos: int = 0, ignore: int = -100) -> Tensor:
    """Decoder targets ``[B, U + 1]``: each transcript, then ``eos``, then ``ignore`` (padding).

    Examples:
        >>> attention_targets(torch.tensor([[3, 4], [5, 0]]), torch.tensor([2, 1])).tolist()
        [[3, 4, 0], [5, 0, -100]]
    """
    b, u = targets.shape
    out = torch.full((b, u + 1), ignore, dtype=torch.long, device=targets.device)
    pos = torch.arange(u + 1, device=targets.device)[None]
    out[:, :u] = torch.where(pos[:, :u] < target_lengths[:, None], targets, ignore)
    out[pos.expand(b, -1) == target_lengths[:, None]] = eos
    return out


def smoothed_attention_loss(log_probs: Tensor, targets: Tensor, smoothing: float, ignore: int = -100) -> Tensor:
    """Per-token cross-entropy with label smoothing over the valid positions, averaged over tokens."""
    valid = targets != ignore
    lp = log_probs.float()[valid]
    nll = -lp.gather(-1, targets[valid][:, None]).squeeze(-1)
    return ((1.0 - smoothing) * nll + smoothing * (-lp.mean(dim=-1))).mean()


@OBJECTIVES.register("hybrid")
class Hybrid(TranscriptObjective):
    """``ctc_weight * CTC + (1 - ctc_weight) * attention cross-entropy``; WER/CER of greedy attention decoding.

    Validation also logs ``ctc_wer`` and ``ctc_cer``, greedy decoding of the CTC branch: on
    small corpora the attention decoder alone is a noisy guide to the joint search's quality
    (on GRID s1 its greedy CER swung between 0.29 and 0.40 over the last ten epochs, and the
    epoch it picked decoded worse jointly than the last one, docs/grid.md), so the GRID hybrid
    recipes monitor ``val/ctc_cer``.

    Reads ``batch["targets"]`` and ``target_lengths``; ``loss.ctc_weight`` (default 0.3),
    ``loss.label_smoothing`` (of the decoder's cross-entropy) and ``loss.zero_infinity`` of the
    recipe apply. Validation decodes greedily with the attention decoder; at test time the
    recipe's ``decoding`` applies: ``joint`` (joint CTC/attention beam search), ``attention``,
    or the CTC decoders ``greedy`` and ``beam`` over the CTC branch. A prediction row's score is
    greedy attention's mean log-probability per token, or the joint search's score.
    """

    monitor = ("val/wer", "min")
    # the export graph is the encoder and the CTC branch, the ``ctc`` objective's outputs
    outputs = {"log_probs": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}
    export_note = ("the graph is the encoder and the CTC branch (decoding.name greedy or beam); the attention "
                   "decoder is not exported, so attention and joint CTC/attention decoding need the PyTorch checkpoint")
    commands = ("transcribe", "noise-eval")
    usage = "`avtoolkit transcribe` (a hybrid CTC/attention model, e.g. recipes/grid_audio_hybrid.yaml)"

    def __init__(self, vocabulary: Sequence[str], loss: Mapping[str, Any] | None = None) -> None:
        super().__init__(vocabulary, loss)
        self.ctc_weight = float(self.settings.ctc_weight)
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ValueError(f"loss.ctc_weight must be within [0, 1], got {self.ctc_weight}")
        self.label_smoothing = float(self.settings.label_smoothing)
        #: the test-time decoder ``outputs -> texts``; ``None``: greedy attention
        self.test_decoder: Callable[[Mapping[str, Tensor]], list[str]] | None = None
        import torchmetrics

        self.ctc_wer = torchmetrics.text.WordErrorRate()  # validation only: greedy CTC branch
        self.ctc_cer = torchmetrics.text.CharErrorRate()

    def attention_loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        """The decoder's label-smoothed cross-entropy (teacher forced), per token."""
        targets = attention_targets(batch["targets"], batch["target_lengths"])
        return smoothed_attention_loss(out["att_log_probs"], targets.to(out["att_log_probs"].device),
                                       self.label_smoothing)

    def loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        w = self.ctc_weight
        ctc = self.ctc_loss(out, batch) if w > 0 else None
        att = self.attention_loss(out, batch) if w < 1 else None
        if ctc is None:
            return att  # type: ignore[return-value]
        if att is None:
            return ctc
        return w * ctc + (1.0 - w) * att

    def evaluate(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str,
                 rows: list[dict[str, Any]] | None = None) -> list[Logged]:
        decoder = self.test_decoder if stage == "test" and self.test_decoder is not None else None
        if decoder is None:
            decoder = self.build_decoder({"name": "attention"}, self.vocabulary, self.model)
        scored = decoder.decode(out) if hasattr(decoder, "decode") else [(t, float("nan")) for t in decoder(out)]
        logged = self.score_transcripts(batch, stage, [t for t, _ in scored], [sc for _, sc in scored], rows)
        if stage == "val":
            hyps, _ = greedy_ctc(out["log_probs"].float(), out["lengths"], self.vocab)
            refs = references(batch, self.vocab)
            self.ctc_wer.update(hyps, refs)
            self.ctc_cer.update(hyps, refs)
            logged += [Logged("ctc_wer", self.ctc_wer), Logged("ctc_cer", self.ctc_cer)]
        return logged

    @classmethod
    def build_decoder(cls, decoding: Mapping[str, Any] | None, vocabulary: Sequence[str],
                      model: Any = None) -> Callable[[Mapping[str, Tensor]], list[str]]:
        """``attention`` and ``joint`` run the model's attention decoder; ``greedy`` and ``beam`` read CTC alone.

        Raises:
            UsageError: an attention decoder for a model without its decoder (an ONNX graph).
        """
        name = section(DecodingConfig, dict(decoding or {})).name
        if name not in ATTENTION_DECODERS:
            from avtoolkit.decoding.ctc_search import build_decoder

            ctc_decoder = build_decoder(decoding, vocabulary)
            return lambda out: ctc_decoder(out["log_probs"], out["lengths"])
        head = getattr(model, "head", None)
        if not hasattr(head, "decoder_step"):
            from avtoolkit.errors import UsageError

            raise UsageError(f"decoding.name={name} runs the attention decoder, which this model does not hold (an "
                             "ONNX export of a hybrid model is the encoder and the CTC branch only): decode it with "
                             "decoding.name=greedy or beam, or use the PyTorch checkpoint for attention decoding")
        from avtoolkit.decoding.joint_search import build_attention_decoder

        return build_attention_decoder(decoding, vocabulary, head)

    def prepare_test(self, decoding: Mapping[str, Any]) -> None:
        if self.test_decoder is None:
            self.test_decoder = self.build_decoder(decoding, self.vocabulary, self.model)
