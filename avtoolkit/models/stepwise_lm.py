"""A language model trained by ``avtoolkit run``, stepped one token at a time for shallow fusion.

A language-model run (head ``lm``, task ``language_model``; ``recipes/grid_lm.yaml``) is an
ordinary recipe model: ``token_embedding -> causal backends (lstm) -> lm``. :class:`StepwiseLM`
offers it to the joint CTC/attention search (:mod:`avtoolkit.decoding.joint_search`) through the
decoder-step interface, ``init_state`` / ``step_state`` / ``select_state``: the embedding of each
hypothesis's last token, one :meth:`~avtoolkit.models.backends.lstm.LSTMBackend.step` per backend,
the head. :func:`load_lm` reads what ``decoding.lm`` names: such a run's checkpoint, or a
:class:`~avtoolkit.models.lm.CharLSTMLM` ``.pt`` of ``python -m avtoolkit.models.lm``.

Examples:
    >>> from avtoolkit.models.assemble import assemble
    >>> model = assemble({"encoders": {"text": {"name": "token_embedding", "dim": 8}},
    ...                   "backends": [{"name": "lstm", "hidden": 8}], "head": {"name": "lm"}}).eval()
    >>> lm = StepwiseLM(model, [str(i) for i in range(29)])
    >>> logp, state = lm.step_state(lm.init_state(), torch.tensor([0, 0]))
    >>> tuple(logp.shape), round(float(logp.detach().exp().sum(-1)[0]), 4)
    ((2, 29), 1.0)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from avtoolkit.errors import CheckpointError, UsageError
from avtoolkit.models.checkpoint import META_KEY, checkpoint_meta, load_model, read_checkpoint

#: what ``decoding.lm`` may name, for the error messages.
LM_FILES = ("a language model run's checkpoint (runs/grid_lm/checkpoints/best.ckpt, from `avtoolkit run grid_lm`) "
            "or a character LM .pt (python -m avtoolkit.models.lm)")


class StepwiseLM(nn.Module):
    """A ``language_model`` recipe model driven one token per hypothesis per step.

    Args:
        model: the assembled model (``text`` encoder, causal backends with ``step``, ``lm`` head).
        vocabulary: its tokens, blank (the start and end token) first.

    Raises:
        ValueError: the model is not a language model that can step (another task, a backend
            without ``step``).
    """

    def __init__(self, model: nn.Module, vocabulary: Sequence[str]) -> None:
        super().__init__()
        if getattr(model, "task", None) != "language_model" or list(getattr(model, "encoders", {})) != ["text"]:
            raise ValueError("a stepwise LM needs a language_model model reading text (token_embedding -> lstm -> lm)")
        unsteppable = [type(b).__name__ for b in model.backends if not hasattr(b, "step") or not getattr(b, "causal", False)]
        if unsteppable:
            raise ValueError(f"backends {', '.join(unsteppable)} cannot run one token at a time (use lstm)")
        self.model = model
        self.vocabulary = list(vocabulary)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def init_state(self, memory: Tensor | None = None, memory_lengths: Tensor | None = None) -> Any:
        """No token fed yet: ``None`` (an LM reads no acoustic memory)."""
        return None

    def step_state(self, state: Any, tokens: Tensor) -> tuple[Tensor, Any]:
        """Feeds ``tokens [N]``; the next token's log-probabilities ``[N, V]`` and the new state (one per backend)."""
        device = next(self.model.parameters()).device
        x = tokens.to(device)[:, None]
        ones = torch.ones(x.shape[0], dtype=torch.long, device=device)
        y, lengths = self.model.encoders["text"](x, ones)
        states = state if state is not None else [None] * len(self.model.backends)
        new = []
        for backend, s in zip(self.model.backends, states):
            y, s = backend.step(y, s)
            new.append(s)
        return self.model.head(y, lengths, {})["log_probs"][:, 0], new

    def select_state(self, state: Any, index: Tensor) -> Any:
        """Rows ``index`` of every backend's state (the beam's survivors)."""
        if state is None:
            return None
        return [backend.select_state(s, index) for backend, s in zip(self.model.backends, state)]

    def sentence_log_prob(self, ids: Sequence[int]) -> float:
        """``log p(ids, end)`` of one sentence (token ids without start/end), from one whole-sentence pass."""
        text = torch.tensor([[0, *ids]])
        nxt = torch.tensor([*ids, 0])
        with torch.no_grad():
            out = self.model({"text": text, "text_lengths": torch.tensor([len(ids) + 1])})
        return float(out["log_probs"][0].gather(1, nxt[:, None]).sum())


def _describe(tokens: Sequence[str]) -> str:
    shown = ", ".join(repr(t) for t in tokens[1:6])
    return f"{len(tokens)} tokens ({shown}{', ...' if len(tokens) > 6 else ''})"


def check_vocabulary(path: Any, lm_tokens: Sequence[str] | int, tokens: Sequence[str]) -> None:
    """Refuses an LM whose tokens are not the model's (``lm_tokens``: the list, or only its size for an old ``.pt``).

    Raises:
        UsageError: naming ``decoding.lm`` and the first difference.

    Examples:
        >>> check_vocabulary("lm.ckpt", ["<blank>", "a"], ["<blank>", "a"])
        >>> check_vocabulary("lm.ckpt", ["<blank>", "a"], ["<blank>", "b"])
        Traceback (most recent call last):
        ...
        avtoolkit.errors.UsageError: decoding.lm: lm.ckpt: the LM's tokens are not the model's (id 1 is 'a' for the LM, 'b' for the model; LM 2 tokens ('a'), model 2 tokens ('b')): train the LM with the ASR recipe's data.tokens
    """
    if isinstance(lm_tokens, int):
        if lm_tokens == len(tokens):
            return
        raise UsageError(f"decoding.lm: {path}: the LM has {lm_tokens} tokens, the model {len(tokens)}: train the LM "
                         "with the ASR recipe's data.tokens")
    lm_tokens, tokens = list(lm_tokens), list(tokens)
    if lm_tokens == tokens:
        return
    first = next((i for i, (a, b) in enumerate(zip(lm_tokens, tokens)) if a != b), min(len(lm_tokens), len(tokens)))
    where = (f"id {first} is {lm_tokens[first]!r} for the LM, {tokens[first]!r} for the model"
             if first < min(len(lm_tokens), len(tokens)) else "one list is longer")
    raise UsageError(f"decoding.lm: {path}: the LM's tokens are not the model's ({where}; LM {_describe(lm_tokens)}, "
                     f"model {_describe(tokens)}): train the LM with the ASR recipe's data.tokens")


def load_lm(path: str | os.PathLike[str], tokens: Sequence[str]) -> nn.Module:
    """The language model ``decoding.lm`` names, in eval mode, checked against the ASR model's ``tokens``.

    Args:
        path: a language-model run's ``best.ckpt`` / ``last.ckpt``, or a ``CharLSTMLM`` ``.pt``.
        tokens: the ASR model's vocabulary (blank first).

    Returns:
        A :class:`StepwiseLM` (a run's checkpoint) or a :class:`~avtoolkit.models.lm.CharLSTMLM`.

    Raises:
        UsageError: no such file, not a language model (another run's checkpoint, a damaged
            file), or other tokens than the model's; each message names ``decoding.lm``.
    """
    from avtoolkit.models.lm import CharLSTMLM

    file = Path(path)
    if not file.is_file():
        raise UsageError(f"decoding.lm: {file}: no such file; give {LM_FILES}")
    try:
        blob = read_checkpoint(file)
    except CheckpointError as exc:
        raise UsageError(f"decoding.lm: {exc}") from exc
    if blob.get("kind") == "char_lstm_lm":
        lm = CharLSTMLM.load(file)
        check_vocabulary(file, lm.out.out_features, tokens)
        return lm
    if META_KEY not in blob:
        raise UsageError(f"decoding.lm: {file}: not a language model; give {LM_FILES}")
    task = checkpoint_meta(blob, file).get("task")
    if task != "language_model":
        raise UsageError(f"decoding.lm: {file}: holds a {task} model, not a language model; give {LM_FILES}")
    loaded = load_model(file)
    check_vocabulary(file, loaded.vocabulary, tokens)
    return StepwiseLM(loaded.model, loaded.vocabulary).eval()
