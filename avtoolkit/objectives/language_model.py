"""The ``language_model`` objective: next-token prediction over text (head ``lm``), scored by perplexity."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from avtoolkit.objectives.base import STAGES, Logged, Objective, example_id
from avtoolkit.registry.kinds import OBJECTIVES


def perplexity_metric() -> Any:
    """A torchmetrics ``Metric``: ``exp(total NLL / tokens)`` over every ``update(nll, tokens)`` of a split.

    Sums across processes. Built here, not at import, so that reading this module (the registry
    does, for ``export`` and ``transcribe``) never imports torchmetrics.

    Examples:
        >>> m = perplexity_metric()
        >>> m.update(torch.tensor([math.log(2.0), math.log(8.0)]), torch.tensor(2))
        >>> round(float(m.compute()), 4)
        4.0
    """
    import torchmetrics

    class Perplexity(torchmetrics.Metric):
        full_state_update = False

        def __init__(self) -> None:
            super().__init__()
            self.add_state("nll", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("tokens", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

        def update(self, nll: Tensor, tokens: Tensor) -> None:
            self.nll += nll.detach().to(torch.float64).sum()
            self.tokens += tokens.detach().sum()

        def compute(self) -> Tensor:
            return torch.exp(self.nll / self.tokens.clamp_min(1))

    return Perplexity()


def token_nll(log_probs: Tensor, targets: Tensor, target_lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Per-position NLL ``[B, L]`` of ``targets`` (zero past each length) and the valid-position mask.

    Examples:
        >>> lp = torch.log(torch.tensor([[[0.5, 0.5], [0.25, 0.75]]]))
        >>> nll, valid = token_nll(lp, torch.tensor([[1, 0]]), torch.tensor([1]))
        >>> [round(v, 4) for v in nll[0].tolist()], valid.tolist()
        ([0.6931, 0.0], [[True, False]])
    """
    width = min(log_probs.shape[1], targets.shape[1])
    lp, tg = log_probs[:, :width].float(), targets[:, :width].to(log_probs.device)
    valid = torch.arange(width, device=lp.device)[None] < target_lengths.to(lp.device)[:, None]
    nll = -lp.gather(-1, tg.clamp_min(0)[..., None]).squeeze(-1)
    return torch.where(valid, nll, torch.zeros_like(nll)), valid


@OBJECTIVES.register("language_model")
class LanguageModel(Objective):
    """Next-token NLL over ``batch["targets"]`` (each sentence's tokens, then the end token 0); perplexity.

    Trained by ``avtoolkit run`` on a text dataset (``grid_text``: a GRID recipe's own split;
    ``text``: a transcript file); the checkpoint is a ``decoding.lm`` for the joint CTC/attention
    search of a hybrid model over the same tokens (``transcribe --lm``), not a ``--checkpoint`` of
    a transcribing command. ``loss.label_smoothing`` applies to training; the logged ``perplexity``
    (per token, end tokens counted, ``exp`` of the mean NLL over the split) never smooths. A
    prediction row holds the sentence, the token the model found most likely after each of its
    prefixes (what it would have typed), and ``log p(sentence, end)``.
    """

    monitor = ("val/perplexity", "min")
    outputs = None  # a language model is not exported: the joint search reads the PyTorch checkpoint
    export_note = ("language models are not exported to ONNX: the joint CTC/attention search fuses the PyTorch "
                   "checkpoint (decoding.lm)")
    commands = ()
    usage = ("decoding.lm of a hybrid model's joint search (`avtoolkit transcribe --checkpoint ASR.ckpt --lm "
             "THIS.ckpt`, or decoding.lm=THIS.ckpt in eval and noise-eval); `avtoolkit eval` scores its perplexity")

    def __init__(self, vocabulary: Sequence[str], loss: Mapping[str, Any] | None = None) -> None:
        super().__init__(vocabulary, loss)
        self.label_smoothing = float(self.settings.label_smoothing)
        self.perplexity = nn.ModuleDict({s: perplexity_metric() for s in STAGES})

    def attach(self, model: nn.Module) -> None:
        """Refuses a model that is not ``text encoder -> causal backends -> lm`` (a recipe error naming the key)."""
        check_language_model(model)
        super().attach(model)

    def loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:
        nll, valid = token_nll(out["log_probs"], batch["targets"], batch["target_lengths"])
        count = valid.sum().clamp_min(1)
        if self.label_smoothing <= 0:
            return nll.sum() / count
        uniform = -(out["log_probs"][:, : valid.shape[1]].float().mean(-1)) * valid
        return ((1.0 - self.label_smoothing) * nll.sum() + self.label_smoothing * uniform.sum()) / count

    def evaluate(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str,
                 rows: list[dict[str, Any]] | None = None) -> list[Logged]:
        nll, valid = token_nll(out["log_probs"], batch["targets"], batch["target_lengths"])
        self.perplexity[stage].update(nll.sum(), valid.sum())
        if rows is not None:
            guess = out["log_probs"].argmax(-1).tolist()
            texts = batch.get("texts") or [""] * nll.shape[0]
            for i, n in enumerate(batch["target_lengths"].tolist()):
                typed = "".join(self.vocabulary[t] if t else "|" for t in guess[i][:n])
                rows.append({"id": example_id(batch, i), "reference": texts[i], "prediction": typed,
                             "score": round(-float(nll[i].sum()), 6)})
        return [Logged("perplexity", self.perplexity[stage], prog_bar=True)]


def check_language_model(model: nn.Module) -> None:
    """A language model reads ``text`` alone (no fusion) and sees no future token: every backend is causal.

    Raises:
        RecipeError: naming the model key that breaks it (a bidirectional or attention backend
            would see the token it must predict, and learn to copy it).
    """
    from avtoolkit.recipe import Problem, RecipeError

    problems = []
    encoders = getattr(model, "encoders", {})
    for modality in encoders:
        if modality != "text":
            problems.append(Problem(f"model.encoders.{modality}", "a language model reads text only: one encoder "
                                    "keyed 'text' (token_embedding); remove this one"))
    if "text" not in encoders:
        problems.append(Problem("model.encoders.text", "missing: a language model reads text "
                                "(model.encoders.text={name: token_embedding})"))
    if getattr(model, "fusion", None) is not None:
        problems.append(Problem("model.fusion", "a language model has one input: set model.fusion=null"))
    for i, backend in enumerate(getattr(model, "backends", [])):
        if not getattr(backend, "causal", False):
            problems.append(Problem(f"model.backends.{i}", f"{type(backend).__name__} sees the whole sentence, so a "
                                    "language model would learn to copy the next token: use a causal backend "
                                    "(lstm with bidirectional: false)"))
    if problems:
        raise RecipeError(problems)


def unigram_perplexity(train: Sequence[Sequence[int]], held_out: Sequence[Sequence[int]], vocab_size: int) -> float:
    """Perplexity of add-one token frequencies of ``train`` on ``held_out`` (token ids with their end token).

    The bar a language model must clear: what letter frequencies alone give.

    Examples:
        >>> round(unigram_perplexity([[1, 0]], [[1, 0]], 2), 3)
        2.0
    """
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for seq in train:
        counts += torch.bincount(torch.tensor(list(seq), dtype=torch.long), minlength=vocab_size).double()
    logp = counts.log() - counts.sum().log()
    total = sum(float(logp[list(s)].sum()) for s in held_out)
    return math.exp(-total / max(1, sum(len(s) for s in held_out)))
