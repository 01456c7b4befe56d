"""The ``classification`` objective: one class per example (LRW's words)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avtoolkit.objectives.base import STAGES, Logged, Objective, example_id
from avtoolkit.registry.kinds import OBJECTIVES


def smoothed_nll(log_probs: Tensor, label: Tensor, smoothing: float) -> Tensor:
    """Cross-entropy on log-probabilities with label smoothing (mean over the batch).

    Written out rather than ``F.cross_entropy(log_probs, label, label_smoothing=s)``: that takes
    logits and would apply log-softmax to the head's log-probabilities again, the same value in
    exact arithmetic but another rounding, which alone moved the demo's LRW top-1 from 96.7% to
    90.8% (seed-like variance of a 120-clip test set); the formula below is the same one.

    Examples:
        >>> lp = torch.log_softmax(torch.tensor([[2.0, 0.0, 0.0]]), -1)
        >>> torch.isclose(smoothed_nll(lp, torch.tensor([0]), 0.0), F.nll_loss(lp, torch.tensor([0]))).item()
        True
        >>> by_hand = 0.9 * F.nll_loss(lp, torch.tensor([0])) + 0.1 * (-lp.mean())
        >>> torch.isclose(smoothed_nll(lp, torch.tensor([0]), 0.1), by_hand).item()
        True
    """
    nll = F.nll_loss(log_probs, label)
    if smoothing <= 0:
        return nll
    return (1.0 - smoothing) * nll + smoothing * (-log_probs.mean(dim=-1)).mean()


@OBJECTIVES.register("classification")
class Classification(Objective):
    """NLL on log_probs [B, classes] with label smoothing and optional mixup; top-1 and top-5 accuracy.

    Reads ``batch["label"]``; ``loss.label_smoothing`` and ``loss.mixup_alpha`` of the recipe
    apply. Logs ``acc`` and ``acc_top5``; a prediction row holds the most likely class and its
    probability.
    """

    monitor = ("val/acc", "max")
    outputs = {"log_probs": {0: "batch"}}
    commands = ("predict",)
    usage = "`avtoolkit predict` (a word classifier, e.g. recipes/lrw_effv2t.yaml)"

    def __init__(self, vocabulary: Sequence[str], loss: Mapping[str, Any] | None = None) -> None:
        import torchmetrics

        super().__init__(vocabulary, loss)
        self.label_smoothing = float(self.settings.label_smoothing)
        self.mixup_alpha = float(self.settings.mixup_alpha)
        n = len(self.vocabulary)
        self.acc = nn.ModuleDict({s: torchmetrics.classification.MulticlassAccuracy(n, top_k=1, average="micro")
                                  for s in STAGES})
        self.acc5 = nn.ModuleDict({s: torchmetrics.classification.MulticlassAccuracy(n, top_k=min(5, n), average="micro")
                                   for s in STAGES})

    def loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        return smoothed_nll(out["log_probs"].float(), batch["label"], self.label_smoothing)

    def training_loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        if self.mixup_alpha > 0:
            return self.mixup_loss(model, batch)
        return super().training_loss(model, batch)

    def mixup_loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        """Mixes inputs with a shuffled copy of the batch; returns the mixed loss."""
        lam = float(torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha).sample())
        label = batch["label"]
        perm = torch.randperm(label.shape[0], device=label.device)
        mixed = dict(batch)
        for key in ("video", "audio", "word_boundary"):
            if isinstance(batch.get(key), Tensor):
                mixed[key] = lam * batch[key] + (1.0 - lam) * batch[key][perm]
            lengths = batch.get(f"{key}_lengths")
            if isinstance(lengths, Tensor):
                mixed[f"{key}_lengths"] = torch.maximum(lengths, lengths[perm])
        log_probs = model(mixed)["log_probs"].float()
        return lam * smoothed_nll(log_probs, label, self.label_smoothing) + \
            (1.0 - lam) * smoothed_nll(log_probs, label[perm], self.label_smoothing)

    def evaluate(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str,
                 rows: list[dict[str, Any]] | None = None) -> list[Logged]:
        log_probs = out["log_probs"]
        self.acc[stage].update(log_probs, batch["label"])
        self.acc5[stage].update(log_probs, batch["label"])
        if rows is not None:
            best, pred = log_probs.float().max(dim=-1)
            refs = batch["label"].tolist()
            for i, (p, s) in enumerate(zip(pred.tolist(), best.exp().tolist())):
                rows.append({"id": example_id(batch, i), "reference": self.vocabulary[refs[i]],
                             "prediction": self.vocabulary[p], "score": round(s, 6)})
        return [Logged("acc", self.acc[stage], prog_bar=True), Logged("acc_top5", self.acc5[stage])]
