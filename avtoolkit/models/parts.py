"""Parts of a model initialised from other runs: the recipe's ``init`` section.

A part is a dotted module path of an :class:`~avtoolkit.models.AVModel` (``encoders.video``,
``encoders.audio``, ``fusion``, ``backends.0``, ``head``). Each ``init`` entry takes every tensor
under ``take`` from a run's checkpoint (its EMA weights when it kept them, as
:func:`~avtoolkit.models.checkpoint.model_state_dict` reads) or from a plain state dict, renames
the prefix to ``into`` and loads it into the fresh model. Every entry is checked (file, prefixes,
keys, shapes) before any is loaded, and every problem is reported at once with its recipe key,
so a run that is refused has neither loaded half its parts nor written its folder. Torch only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from avtoolkit.errors import CheckpointError
from avtoolkit.models.checkpoint import StateDiff, compare_state_dicts, model_state_dict, read_checkpoint
from avtoolkit.recipe import Problem, Recipe, RecipeError
from avtoolkit.recipe.schema import InitConfig, section
from avtoolkit.registry.suggest import close_names

#: the AVModel containers whose children are the parts (``encoders.video``, ``backends.0``).
CONTAINERS = ("encoders", "backends")


@dataclass
class PartLoad:
    """One ``init`` entry, checked: where its tensors come from and how they fit.

    Attributes:
        key: its recipe key (``init.0``).
        path: the checkpoint or state dict, resolved.
        take: the prefix taken from it.
        into: the prefix it goes to in the model.
        diff: how the taken tensors (renamed) differ from the model's part; clean when strict.
        count: how many tensors are loaded.
        freeze_epochs: epochs the part stays fixed.
        tensors: what will be loaded, keyed as in the model (emptied once loaded).
    """

    key: str
    path: Path
    take: str
    into: str
    diff: StateDiff
    count: int
    freeze_epochs: int = 0
    tensors: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """One log line: what was loaded from where, and what was left out when not strict."""
        head = f"{self.key}: {self.into} <- {self.take} of {self.path} ({self.count} tensors)"
        return head if self.diff.clean else f"{head}; partial (strict: false), not loaded:\n{self.diff.describe()}"


def under(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of ``state`` whose key is ``prefix`` or starts with ``prefix + "."``.

    Examples:
        >>> sorted(under({"backends.0.w": 1, "backends.01.w": 2, "head.b": 3}, "backends.0"))
        ['backends.0.w']
    """
    return {k: v for k, v in state.items() if k == prefix or k.startswith(prefix + ".")}


def rename(state: Mapping[str, Tensor], take: str, into: str) -> dict[str, Tensor]:
    """``state`` with the leading ``take`` of every key replaced by ``into``.

    Examples:
        >>> rename({"backends.0.w": 1}, "backends.0", "backends.1")
        {'backends.1.w': 1}
    """
    return {into + k[len(take):]: v for k, v in state.items()}


def part_names(keys: Any) -> list[str]:
    """The model-level parts that tensor ``keys`` belong to, in first-seen order.

    Examples:
        >>> part_names(["encoders.video.stem.w", "encoders.audio.w", "backends.0.w", "head.b"])
        ['encoders.video', 'encoders.audio', 'backends.0', 'head']
    """
    names: dict[str, None] = {}
    for key in keys:
        parts = key.split(".")
        depth = 2 if parts[0] in CONTAINERS and len(parts) > 2 else 1
        names[".".join(parts[:depth])] = None
    return list(names)


def _prefixes(keys: Any) -> set[str]:
    """Every dotted prefix of every key (the module paths a prefix may name)."""
    return {".".join(k.split(".")[:i]) for k in keys for i in range(1, k.count(".") + 2)}


def _unknown(name: str, keys: Any, where: str) -> str:
    close = close_names(name, _prefixes(keys))
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    return f"{where} has no part '{name}'; {hint}its parts: {', '.join(part_names(keys)) or '(none)'}"


def check_parts(model: torch.nn.Module, recipe: Recipe) -> list[PartLoad]:
    """Checks every ``init`` entry of ``recipe`` against ``model``, reading the files; loads nothing.

    Raises:
        RecipeError: every problem at once, each at its recipe key (``init.0.path``: no such file,
            not weights-only; ``init.0.take``: no such part in the file, or its keys or shapes do
            not fit, each named; ``init.0.into``: no such part in the model, or overlapping
            another entry's).
    """
    model_state = model.state_dict()
    module_names = {n for n, _ in model.named_modules()} | set(model_state)
    problems: list[Problem] = []
    parts: list[PartLoad] = []
    for i, raw in enumerate(recipe.get("init") or []):
        key = f"init.{i}"
        cfg = section(InitConfig, raw)
        into = cfg.into or cfg.take
        into_key = f"{key}.into" if cfg.into else f"{key}.take"
        found = len(problems)
        if into not in module_names:
            problems.append(Problem(into_key, _unknown(into, model_state, "this model") + " (`avtoolkit summary "
                                    "RECIPE` lists them as model.<part>)", recipe.where(into_key)))
        for j, other in enumerate(parts):
            if into == other.into or into.startswith(other.into + ".") or other.into.startswith(into + "."):
                problems.append(Problem(into_key, f"'{into}' overlaps init.{j} ('{other.into}'): "
                                        "each weight comes from one entry", recipe.where(into_key)))
        path = recipe.resolve_path(cfg.path)
        try:
            state = model_state_dict(read_checkpoint(path))
        except (FileNotFoundError, CheckpointError) as exc:
            message = str(exc)
            if isinstance(exc, FileNotFoundError):
                message = f"no such file: {path} (train that run first, or set {key}.path)"
            problems.append(Problem(f"{key}.path", message, recipe.where(f"{key}.path")))
            continue
        taken = under(state, cfg.take)
        if not taken:
            problems.append(Problem(f"{key}.take", _unknown(cfg.take, state, str(path)), recipe.where(f"{key}.take")))
        if len(problems) > found:
            continue
        target = under(model_state, into)
        loaded = rename(taken, cfg.take, into)
        diff = compare_state_dicts(target, loaded)
        bad = {k for k, _, _ in diff.mismatched} | set(diff.unexpected)
        usable = {k: v for k, v in loaded.items() if k not in bad}
        moved = f" into {into}" if into != cfg.take else ""
        if cfg.strict and not diff.clean:
            problems.append(Problem(f"{key}.take", f"{cfg.take} of {path} does not fit{moved} (strict; set "
                                    f"{key}.strict: false to load what fits):\n    " +
                                    diff.describe().replace("\n", "\n    "), recipe.where(f"{key}.take")))
        elif not usable:
            problems.append(Problem(f"{key}.take", f"no tensor of {cfg.take} in {path} fits{moved}:\n    " +
                                    diff.describe().replace("\n", "\n    "), recipe.where(f"{key}.take")))
        else:
            parts.append(PartLoad(key, path, cfg.take, into, diff, len(usable), cfg.freeze_epochs, usable))
    if problems:
        raise RecipeError(problems, str(recipe.source) if recipe.source else None)
    return parts


def init_parts(model: torch.nn.Module, recipe: Recipe) -> list[PartLoad]:
    """Loads every ``init`` entry of ``recipe`` into ``model``, after :func:`check_parts` passed them all.

    Returns:
        The entries loaded, in recipe order (their :meth:`PartLoad.describe` is the log line).

    Raises:
        RecipeError: as :func:`check_parts`; nothing is loaded then.

    Examples:
        >>> import tempfile
        >>> from avtoolkit.recipe import load_recipe
        >>> from avtoolkit.models.assemble import assemble
        >>> section = {"encoders": {"audio": {"name": "audio_cnn"}}, "head": {"name": "ctc", "vocab_size": 5}}
        >>> source, target = assemble(section), assemble(section)
        >>> path = tempfile.mkdtemp() + "/audio.pt"
        >>> torch.save(source.state_dict(), path)
        >>> loaded = init_parts(target, load_recipe({"init": [{"path": path, "take": "encoders.audio"}]}))
        >>> mine, theirs = target.state_dict(), source.state_dict()
        >>> [p.into for p in loaded], all(torch.equal(mine[k], theirs[k]) for k in under(mine, "encoders.audio"))
        (['encoders.audio'], True)
    """
    parts = check_parts(model, recipe)
    for part in parts:
        result = model.load_state_dict(part.tensors, strict=False)
        assert not result.unexpected_keys, result.unexpected_keys  # check_parts kept only the model's keys
        part.tensors = {}  # the model holds them now; a copy would double the part's memory for the run
    return parts


def frozen_parts(recipe: Recipe) -> dict[str, int]:
    """``into -> freeze_epochs`` of the ``init`` entries that stay fixed for a while.

    Read from the recipe, not from the loaded parts: a resumed run loads no part (its checkpoint
    holds the weights) but keeps freezing until the epoch the recipe says.

    Examples:
        >>> from avtoolkit.recipe import load_recipe
        >>> frozen_parts(load_recipe({"init": [{"path": "a.ckpt", "take": "encoders.video", "freeze_epochs": 2},
        ...                                    {"path": "b.ckpt", "take": "head"}]}))
        {'encoders.video': 2}
    """
    entries = [section(InitConfig, raw) for raw in recipe.get("init") or []]
    return {(e.into or e.take): e.freeze_epochs for e in entries if e.freeze_epochs > 0}
