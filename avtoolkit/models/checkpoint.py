"""Reading checkpoints: atomic writes, weights-only loading, and models rebuilt from a run.

Torch only: transcribing a clip never imports Lightning. The engine's Lightning plug-in that
writes checkpoints through :func:`save_atomic` is :mod:`avtoolkit.engine.checkpoint_io`.

Besides Lightning's own keys a checkpoint holds ``checkpoint["avtoolkit"]``: the resolved
recipe, the vocabulary, the task and the avtoolkit version, all plain types, so
``torch.load(..., weights_only=True)`` reads it and a model can be rebuilt without the
recipe file. When the run used EMA the averaged weights live in the EMA callback's state
(``checkpoint["callbacks"]["EMA"]["shadow"]``); :func:`model_state_dict` prefers them.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from avtoolkit.atomic import atomic_write
from avtoolkit.errors import CheckpointError
from avtoolkit.recipe import Recipe

#: key of the avtoolkit metadata inside a checkpoint dict.
META_KEY = "avtoolkit"
#: ``state_key`` of the EMA callback, under ``checkpoint["callbacks"]``.
EMA_KEY = "EMA"
#: prefix of the model's parameters in the LightningModule's state dict.
MODEL_PREFIX = "model."


def save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``.

    A process killed mid-save leaves the previous file untouched (``os.replace`` is atomic
    on one filesystem); only a stray ``.tmp`` file can remain.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "last.ckpt"
        >>> save_atomic({"epoch": 3}, target)
        >>> read_checkpoint(target)["epoch"]
        3
    """
    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


#: first bytes of what ``torch.save`` writes: a zip archive, or a legacy pickle (protocol 2+).
TORCH_MAGIC = (b"PK\x03\x04", b"\x80")
#: file name endings taken for PyTorch checkpoints without looking inside.
CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth")


def looks_like_torch_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether a file starts as ``torch.save`` output does (zip or pickle), whatever its name.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "model"
        >>> torch.save({"w": torch.zeros(1)}, p)
        >>> looks_like_torch_checkpoint(p)
        True
        >>> _ = p.write_bytes(b"\x08\x07\x12\x07pytorch")  # how an .onnx file starts
        >>> looks_like_torch_checkpoint(p)
        False
    """
    with open(path, "rb") as f:
        head = f.read(4)
    return any(head.startswith(m) for m in TORCH_MAGIC)


def is_onnx_file(path: str | os.PathLike[str]) -> bool:
    """``.onnx`` in any case, or a file with another ending that is not a PyTorch checkpoint.

    Examples:
        >>> is_onnx_file("model.ONNX"), is_onnx_file("best.ckpt")
        (True, False)
    """
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        return True
    if suffix in CHECKPOINT_SUFFIXES or not Path(path).is_file():
        return False
    return not looks_like_torch_checkpoint(path)


def read_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Loads a checkpoint with ``weights_only=True``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file needs arbitrary code to load (pickled classes or
            functions), is truncated or is not a checkpoint at all; it is refused rather than
            executed, and the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not looks_like_torch_checkpoint(path):
        what = "empty" if path.stat().st_size == 0 else "not a PyTorch checkpoint"
        hint = " (an ONNX export? `avtoolkit transcribe` reads those)" if is_onnx_file(path) else ""
        raise CheckpointError(f"{path}: {what}{hint}; give a run's checkpoints/best.ckpt or last.ckpt")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False; we never do that for the user.
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: refused: the checkpoint needs arbitrary code to load ({first}). avtoolkit loads "
            "checkpoints with torch.load(weights_only=True) only; re-save it as a plain state dict "
            "(tensors, numbers, strings, lists and dicts)"
        ) from exc
    except (RuntimeError, EOFError, KeyError, ValueError, OSError) as exc:
        # torch reports a cut-off or damaged file in several ways, none naming it.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"{path}: cannot be read, truncated or damaged ({first}); copy it again or use "
                              "another checkpoint") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint or state dict, got {type(obj).__name__}")
    return obj


def model_state_dict(checkpoint: Mapping[str, Any], prefer_ema: bool = True) -> dict[str, Tensor]:
    """The model's weights from a checkpoint dict: EMA weights when present, else trained ones.

    Accepts avtoolkit/Lightning checkpoints (``state_dict`` with ``model.`` keys) and plain
    ``AVModel`` state dicts.

    Examples:
        >>> ckpt = {"state_dict": {"model.head.w": torch.zeros(1)},
        ...         "callbacks": {"EMA": {"shadow": {"head.w": torch.ones(1)}}}}
        >>> model_state_dict(ckpt)["head.w"].item()
        1.0
        >>> model_state_dict(ckpt, prefer_ema=False)["head.w"].item()
        0.0
    """
    if "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        state = {k[len(MODEL_PREFIX):] if k.startswith(MODEL_PREFIX) else k: v
                 for k, v in checkpoint["state_dict"].items()}
        shadow = (checkpoint.get("callbacks") or {}).get(EMA_KEY, {}).get("shadow") if prefer_ema else None
        if shadow:
            state = {**state, **shadow}
        return state
    state = {k: v for k, v in checkpoint.items() if isinstance(v, Tensor)}
    if state and all(k.startswith(MODEL_PREFIX) for k in state):
        state = {k[len(MODEL_PREFIX):]: v for k, v in state.items()}
    return state


@dataclass
class StateDiff:
    """How a state dict differs from a model's: key names and shapes."""

    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        """Readable lines naming each differing key (``limit`` per category)."""
        lines = []

        def names(label: str, items: list[str]) -> None:
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                lines.append(f"{label} ({len(items)}): {', '.join(items[:limit])}{more}")

        names("missing in checkpoint", self.missing)
        names("not in model", self.unexpected)
        if self.mismatched:
            shown = [f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.mismatched[:limit]]
            lines.append(f"shape differs ({len(self.mismatched)}): " + "; ".join(shown))
        return "\n".join(lines)


def compare_state_dicts(model_state: Mapping[str, Tensor], loaded: Mapping[str, Tensor]) -> StateDiff:
    """Keys missing from ``loaded``, keys the model lacks, and shape mismatches.

    Examples:
        >>> d = compare_state_dicts({"a": torch.zeros(2), "b": torch.zeros(1)},
        ...                         {"a": torch.zeros(3), "c": torch.zeros(1)})
        >>> d.missing, d.unexpected, d.mismatched
        (['b'], ['c'], [('a', (3,), (2,))])
    """
    missing = sorted(k for k in model_state if k not in loaded)
    unexpected = sorted(k for k in loaded if k not in model_state)
    mismatched = sorted(
        (k, tuple(loaded[k].shape), tuple(model_state[k].shape))
        for k in model_state
        if k in loaded and tuple(loaded[k].shape) != tuple(model_state[k].shape)
    )
    return StateDiff(missing, unexpected, mismatched)


def load_pretrained(model: torch.nn.Module, path: str | os.PathLike[str], strict: bool = True) -> StateDiff:
    """Initialises ``model`` from a checkpoint or a state dict (``pretrained:`` in a recipe).

    With ``strict=False`` every key present in both with the same shape is loaded and the
    rest (e.g. a new head) keeps its fresh initialisation; the returned diff names them.

    Raises:
        CheckpointError: ``strict`` and the keys or shapes differ (each named).
    """
    loaded = model_state_dict(read_checkpoint(path))
    diff = compare_state_dicts(model.state_dict(), loaded)
    if strict and not diff.clean:
        raise CheckpointError(
            f"pretrained weights {path} do not fit the model (set pretrained.strict: false to load "
            f"the keys that fit):\n{diff.describe()}"
        )
    bad = {k for k, _, _ in diff.mismatched}
    usable = {k: v for k, v in loaded.items() if k not in bad and k not in diff.unexpected}
    model.load_state_dict(usable, strict=False)
    return diff


@dataclass
class LoadedModel:
    """A trained model with what is needed to use it.

    Attributes:
        model: the :class:`~avtoolkit.models.AVModel` in eval mode (EMA weights when the
            run used EMA).
        recipe: the run's resolved recipe.
        vocabulary: class names (classification) or CTC tokens with the blank first.
        task: ``"classification"`` or ``"ctc"``.
    """

    model: torch.nn.Module
    recipe: Recipe
    vocabulary: list[str]
    task: str


def checkpoint_meta(checkpoint: Mapping[str, Any], path: Any = "checkpoint") -> dict[str, Any]:
    """The ``avtoolkit`` metadata of a checkpoint.

    Raises:
        CheckpointError: the checkpoint was not written by an avtoolkit run.
    """
    meta = checkpoint.get(META_KEY)
    if not isinstance(meta, Mapping) or "recipe" not in meta:
        raise CheckpointError(
            f"{path}: no avtoolkit metadata (recipe, vocabulary): not written by `avtoolkit run`; "
            "use it as `pretrained: {path: ...}` in a recipe instead"
        )
    return dict(meta)


def accepts(task: str, command: str) -> bool:
    """Whether the objective of a head ``task`` lists ``command`` among those taking its checkpoints.

    The objectives (:mod:`avtoolkit.objectives`, above this layer) are reached through their
    registry; a task no objective is registered for is accepted by no command.

    Examples:
        >>> accepts("ctc", "transcribe"), accepts("classification", "transcribe"), accepts("unknown", "predict")
        (True, False, False)
    """
    from avtoolkit.registry.kinds import OBJECTIVES

    return task in OBJECTIVES and command in OBJECTIVES.get(task).commands


def check_command(path: Any, task: str, command: str) -> None:
    """Refuses a checkpoint of ``task`` for a ``command`` its objective does not list.

    Raises:
        CheckpointError: naming the task that command needs and the command the checkpoint's
            objective points to (``usage``).
    """
    from avtoolkit.registry.kinds import OBJECTIVES

    if accepts(task, command):
        return
    needed = [e.name for e in OBJECTIVES if accepts(e.name, command)]
    usage = OBJECTIVES.get(task).usage if task in OBJECTIVES else "its own command"
    raise CheckpointError(f"{path}: holds a {task} model, this needs a {' or '.join(needed) or 'different'} model; "
                          f"use it with {usage}")


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu",
               command: str | None = None) -> LoadedModel:
    """Rebuilds a trained model from a run's ``best.ckpt`` or ``last.ckpt``.

    Args:
        path: the checkpoint file.
        device: where to put the model.
        command: the command that will use the model (``"transcribe"``, ``"predict"``,
            ``"noise-eval"``); the objective of the checkpoint's task must list it in its
            ``commands``, checked before the model is built.

    Returns:
        A :class:`LoadedModel` (model in eval mode).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unsafe or non-avtoolkit checkpoint, a model whose objective does not
            serve ``command``, or weights that do not fit the recipe's model (keys and shapes named).
    """
    from avtoolkit.models.assemble import assemble
    from avtoolkit.recipe import validate_recipe

    checkpoint = read_checkpoint(path, map_location="cpu")
    meta = checkpoint_meta(checkpoint, path)
    if command is not None:
        check_command(path, str(meta.get("task")), command)
    # The data section is checked by whoever reads data (evaluate, noise-eval): the dataset
    # registry imports Lightning, which transcribing a clip must not load.
    recipe = validate_recipe(meta["recipe"], check_data=False)
    model = assemble(recipe["model"])
    state = model_state_dict(checkpoint)
    diff = compare_state_dicts(model.state_dict(), state)
    if not diff.clean:
        raise CheckpointError(f"{path}: weights do not fit the model of its own recipe:\n{diff.describe()}")
    model.load_state_dict(state)
    model.to(device).eval()
    return LoadedModel(model=model, recipe=recipe, vocabulary=list(meta["vocabulary"]), task=str(meta["task"]))
