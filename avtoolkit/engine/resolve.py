"""Resolves a recipe into a run: validated recipe, dataset, vocabulary and injected head sizes.

Everything a run or an evaluation does before the Trainer. (Named apart from the ROI cache
"preparation" of the datasets and Lightning's ``prepare_data``.)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping

from avtoolkit.datasets.base import AVDataModule
from avtoolkit.recipe import Problem, Recipe, RecipeError, find_problems, load_recipe, validate_recipe
from avtoolkit.recipe.validate import check_component
from avtoolkit.registry import registry_for

#: head arguments the engine fills from the dataset's vocabulary when the recipe leaves them out.
HEAD_SIZE_ARGS = ("num_classes", "vocab_size")


@dataclass
class ResolvedRun:
    """A recipe resolved into a run: validated, with the dataset it names and its vocabulary."""

    recipe: Recipe
    datamodule: AVDataModule
    vocabulary: list[str]


def build_datamodule(recipe: Recipe) -> AVDataModule:
    """Builds the recipe's ``data`` component (a registered ``LightningDataModule``).

    The top-level ``batch_size`` goes to the dataset when its own section does not set one.

    Raises:
        RecipeError: no ``data`` section, or its name or arguments do not bind.
    """
    data = recipe.get("data")
    if data is None:
        raise RecipeError([Problem("data", "missing: the data section (which dataset, where it is)")],
                          str(recipe.source) if recipe.source else None)
    problems = check_component("dataset", data, "data", recipe, injected=frozenset())
    if problems:
        raise RecipeError(problems, str(recipe.source) if recipe.source else None)
    cls = registry_for("dataset").get(data["name"])
    args = {k: v for k, v in data.items() if k != "name"}
    if recipe.get("batch_size") is not None and "batch_size" in inspect.signature(cls).parameters:
        args.setdefault("batch_size", recipe["batch_size"])
    try:
        return cls(**args)
    except Exception as exc:
        exc.add_note(f"while building dataset '{data['name']}' at recipe key 'data'")
        raise


def datamodule_vocabulary(dm: AVDataModule, name: str) -> list[str]:
    """The dataset's ``vocabulary``; calls ``setup("fit")`` first if it is only known after that.

    Raises:
        TypeError: the dataset exposes no vocabulary (the data contract requires one).
    """
    vocab = getattr(dm, "vocabulary", None)
    if not vocab:
        dm.setup("fit")
        vocab = getattr(dm, "vocabulary", None)
    if not vocab:
        raise TypeError(f"dataset '{name}' has no `vocabulary` (class names or CTC tokens); see "
                        "avtoolkit/datasets/base.py")
    return [str(v) for v in vocab]


def inject_head_sizes(recipe: Recipe, vocabulary: list[str]) -> None:
    """Fills ``model.head.num_classes`` / ``vocab_size`` from the vocabulary, or checks them; likewise
    the ``vocab_size`` of an encoder that reads token ids (a language model's ``token_embedding``).

    Raises:
        RecipeError: the recipe sets one that differs from the dataset's size.
    """
    model = recipe.get("model") or {}
    parts = [("model.head", model.get("head"), "head", HEAD_SIZE_ARGS)]
    encoders = model.get("encoders")
    if isinstance(encoders, dict):
        parts += [(f"model.encoders.{m}", spec, "encoder", ("vocab_size",)) for m, spec in encoders.items()]
    data_name = (recipe.get("data") or {}).get("name", "?")
    for key, spec, kind, args in parts:
        if not isinstance(spec, dict) or spec.get("name") not in registry_for(kind):
            continue  # validation reports it with the rest
        params = inspect.signature(registry_for(kind).get(spec["name"])).parameters
        for arg in args:
            if arg not in params:
                continue
            if spec.get(arg) is None:
                spec[arg] = len(vocabulary)
            elif spec[arg] != len(vocabulary):
                path = f"{key}.{arg}"
                raise RecipeError([Problem(path, f"is {spec[arg]} but dataset '{data_name}' has {len(vocabulary)} "
                                           f"{'classes' if arg == 'num_classes' else 'tokens'}; remove the key to "
                                           "use the dataset's size", recipe.where(path))],
                                  str(recipe.source) if recipe.source else None)


def check_modalities(recipe: Recipe, dm: AVDataModule) -> None:
    """Refuses a model that reads none of what the dataset yields (a language model on a video dataset).

    Only where the dataset says what it yields (``modalities``); a model may read fewer inputs
    than a dataset offers (an audio-only model on audio-visual GRID).

    Raises:
        RecipeError: naming ``model.encoders`` and the datasets that fit.
    """
    given = getattr(dm, "modalities", None)
    encoders = (recipe.get("model") or {}).get("encoders")
    if not given or not isinstance(encoders, dict) or not encoders or set(encoders) & set(given):
        return
    hint = (" (a language model trains on text: data.name grid_text or text_file)" if "text" in encoders else
            " (text datasets train language models: data.name grid or another corpus for this model)"
            if "text" in given else "")
    raise RecipeError([Problem("model.encoders", f"the model reads {', '.join(encoders)} but dataset "
                               f"'{recipe['data']['name']}' yields {', '.join(given)}{hint}", recipe.where("model.encoders"))],
                      str(recipe.source) if recipe.source else None)


def record_input_settings(recipe: Recipe) -> None:
    """Writes the dataset's default of each :data:`~avtoolkit.data.contract.INPUT_SETTINGS` key
    that the recipe's ``data`` section leaves out, so the checkpoint names how inputs were made."""
    from avtoolkit.data.contract import INPUT_SETTINGS

    data = recipe["data"]
    params = inspect.signature(registry_for("dataset").get(data["name"])).parameters
    for key in INPUT_SETTINGS:
        if key not in data and key in params and params[key].default is not inspect.Parameter.empty:
            data[key] = params[key].default


def resolve_run(recipe: Any, overrides: list[str] | None = None, model: Mapping[str, Any] | None = None) -> ResolvedRun:
    """Loads a recipe, builds its dataset, sizes its head from the vocabulary and validates it.

    The dataset is told the audio input the model's audio encoder declares (``data.audio_input``:
    log-mel or the waveform, :mod:`avtoolkit.recipe.audio_input`).

    Args:
        recipe: a path, mapping or :class:`~avtoolkit.recipe.Recipe`.
        overrides: ``key.path=value`` strings.
        model: the model section whose encoders the data must feed, when it is not the recipe's
            own (``evaluate`` takes the model from a checkpoint).

    Raises:
        RecipeError: every problem in the recipe, each with its key.
    """
    from avtoolkit.recipe.audio_input import fill_audio_input

    loaded = load_recipe(recipe, overrides)
    # Report every problem at once before building anything, except the head sizes that
    # only the dataset's vocabulary can fill in.
    fillable = {f"model.head.{a}" for a in HEAD_SIZE_ARGS}
    problems = [p for p in find_problems(loaded, require_data=True, model=model)
                if not (p.path in fillable and p.message == "missing required argument")]
    if problems:
        raise RecipeError(problems, str(loaded.source) if loaded.source else None)
    fill_audio_input(loaded, model)
    dm = build_datamodule(loaded)
    check_modalities(loaded, dm)
    vocab = datamodule_vocabulary(dm, loaded["data"]["name"])
    inject_head_sizes(loaded, vocab)
    record_input_settings(loaded)
    validated = validate_recipe(loaded, require_data=True, model=model)
    return ResolvedRun(recipe=validated, datamodule=dm, vocabulary=vocab)

