"""Which audio input a recipe's model reads, and the ``data.audio_input`` that follows from it.

The model's audio encoder declares its input as a class attribute (``Encoder.audio_input``:
``log_mel`` or ``waveform``, :data:`~avtoolkit.registry.kinds.AUDIO_INPUTS`). That declaration is
the one source: the datasets take it as ``data.audio_input``, which :func:`fill_audio_input`
writes from the model section (so a run's saved recipe records it), and the ``Transcriber``
reads it with :func:`model_audio_input`. A recipe may leave the key out; one that sets it to
something else than the encoder reads is a problem at ``data.audio_input``
(:func:`audio_input_problems`, part of recipe validation).
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from avtoolkit.recipe.errors import Problem
from avtoolkit.recipe.loader import Recipe
from avtoolkit.registry.kinds import registry_for

__all__ = ["audio_input_problems", "fill_audio_input", "model_audio_input"]


def _audio_encoder(model: Any) -> str | None:
    encoders = model.get("encoders") if isinstance(model, Mapping) else None
    spec = encoders.get("audio") if isinstance(encoders, Mapping) else None
    name = spec.get("name") if isinstance(spec, Mapping) else None
    return name if isinstance(name, str) and name in registry_for("encoder") else None


def model_audio_input(model: Any) -> str | None:
    """``log_mel`` or ``waveform``: what the audio encoder of a ``model`` section reads; ``None``
    without a (registered) audio encoder.

    Examples:
        >>> model_audio_input({"encoders": {"audio": {"name": "auto_avsr_audio"}}})
        'waveform'
        >>> model_audio_input({"encoders": {"audio": {"name": "audio_cnn"}, "video": {"name": "video_cnn"}}})
        'log_mel'
        >>> model_audio_input({"encoders": {"video": {"name": "video_cnn"}}}) is None
        True
    """
    name = _audio_encoder(model)
    return None if name is None else str(getattr(registry_for("encoder").get(name), "audio_input", "log_mel"))


def _dataset_takes_it(data: Mapping[str, Any]) -> bool | None:
    """Whether the ``data`` section's dataset has an ``audio_input`` argument (``None``: not a known dataset)."""
    name = data.get("name")
    datasets = registry_for("dataset")
    if not isinstance(name, str) or name not in datasets:
        return None
    return "audio_input" in inspect.signature(datasets.get(name)).parameters


def audio_input_problems(recipe: Recipe, model: Any = None) -> list[Problem]:
    """``data.audio_input`` against the audio encoder of ``model`` (default: the recipe's own model section).

    A problem when the key is set to another input than the encoder reads, or when the
    encoder reads the waveform and the dataset can only give log-mel.
    """
    model = recipe.get("model") if model is None else model
    kind, data = model_audio_input(model), recipe.get("data")
    if kind is None or not isinstance(data, Mapping):
        return []
    encoder = f"model.encoders.audio ('{_audio_encoder(model)}')"
    if "audio_input" in data and data["audio_input"] != kind:
        return [Problem("data.audio_input", f"is {data['audio_input']!r} but {encoder} reads the {kind}; remove "
                        "the key: it is filled in from the encoder", recipe.where("data.audio_input"))]
    modalities = data.get("modalities")
    if kind != "log_mel" and _dataset_takes_it(data) is False and (not isinstance(modalities, list)
                                                                     or "audio" in modalities):
        return [Problem("data", f"dataset '{data['name']}' gives audio encoders log-mel frames only, but {encoder} "
                        f"reads the {kind}", recipe.where("data"))]
    return []


def fill_audio_input(recipe: Recipe, model: Any = None) -> None:
    """Sets ``data.audio_input`` from the audio encoder of ``model`` (default: the recipe's), when the
    dataset takes it and the recipe leaves it out; a recipe that sets it is checked by
    :func:`audio_input_problems` instead."""
    kind, data = model_audio_input(recipe.get("model") if model is None else model), recipe.get("data")
    if kind is not None and isinstance(data, dict) and "audio_input" not in data and _dataset_takes_it(data):
        data["audio_input"] = kind
