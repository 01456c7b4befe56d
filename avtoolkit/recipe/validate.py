"""Checks a recipe without building anything and reports every problem at once.

Each component's arguments are bound to its constructor signature, so a typo reads
``model.encoders.video.widht: unexpected argument (did you mean 'width'?)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import Any, Mapping

from avtoolkit.recipe.errors import Problem, RecipeError
from avtoolkit.recipe.loader import Recipe, load_recipe
from avtoolkit.recipe.schema import BOUNDS, LIST_SECTIONS, SCALARS, SECTIONS, TOP_LEVEL, UPPER_BOUNDS
from avtoolkit.registry import RegistryError, registry_for
from avtoolkit.registry.describe import INJECTED_ARGS
from avtoolkit.registry.suggest import did_you_mean

MODEL_KEYS = ("encoders", "fusion", "backends", "head")

#: A whole-number argument named like a count (``layers``, ``heads``, ``channels``, ``hidden_dim``,
#: ``kernel_size``, ``num_classes``, ``n_mels``, ...) must be at least 1, and so must each whole
#: number of a list under such a name (``channels: [32, 64]``). One rule for every component,
#: plugins included: ``layers: -1`` or ``channels: 0`` would otherwise build an empty or
#: broken model that ``validate`` calls fine. Other ranges are listed in ``schema.BOUNDS``.
COUNT_NAME = re.compile(r"(^|_)(layers|heads|channels|ch|dim|dims|hidden|size|sizes|classes|kernels|mels)$"
                        r"|^(num|n)_")


#: the largest count an argument may hold. No component needs a million layers, channels or
#: classes; ``layers: 1e29`` would otherwise validate and then build (or ``summary``) forever.
MAX_COUNT = 1_000_000

#: an argument named like a probability or a dropout rate (``noise_prob``, ``dropout``, ``p``,
#: ``modality_dropout``) must lie in [0, 1].
PROBABILITY_NAME = re.compile(r"(^|_)(prob|probability|dropout|p)$")

#: an argument named like an SNR range (``noise_snr_db``): a number, or an ordered ``[low, high]`` pair.
RANGE_NAME = re.compile(r"(^|_)snr_db$")

#: a seed: what numpy's and torch's generators take.
SEED_RANGE = (0, 2**32 - 1)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count_problem(path: str, value: Any, where: str | None) -> Problem | None:
    """A problem when ``value`` at a count-named key holds a whole number below 1 or above :data:`MAX_COUNT`."""
    if not COUNT_NAME.search(path.rsplit(".", 1)[-1]):
        return None
    values = value if isinstance(value, (list, tuple)) else [value]
    numbers = [v for v in values if _is_number(v)]
    if any(isinstance(v, int) and v < 1 for v in numbers):
        return Problem(path, f"counts something, so must be at least 1, got {value!r}", where)
    if any(not v <= MAX_COUNT for v in numbers):  # `not <=`: NaN too
        return Problem(path, f"counts something, so must be at most {MAX_COUNT:,}, got {value!r}", where)
    return None


def _argument_problem(path: str, value: Any, where: str | None) -> Problem | None:
    """Ranges every component argument of a kind keeps, whatever the component (plugins too): counts
    (:func:`_count_problem`), probabilities in [0, 1], seeds in :data:`SEED_RANGE`, SNR ranges ordered."""
    name = path.rsplit(".", 1)[-1]
    if (count := _count_problem(path, value, where)) is not None:
        return count
    if PROBABILITY_NAME.search(name) and _is_number(value) and not 0 <= value <= 1:
        return Problem(path, f"is a probability, so must be within [0, 1], got {value!r}", where)
    if name == "seed" and _is_number(value) and not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        return Problem(path, f"must be a whole number within [0, 2**32 - 1], got {value!r}", where)
    if RANGE_NAME.search(name) and isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(_is_number(v) and v == v for v in value):
            return Problem(path, f"must be a number or a [low, high] pair of numbers, got {value!r}", where)
        if value[0] > value[1]:
            return Problem(path, f"is a [low, high] range, so low must not exceed high, got {value!r} "
                           f"(did you mean {[value[1], value[0]]!r}?)", where)
    return None


def _bound_problem(path: str, value: Any, where: str | None, bound: str | None = None) -> Problem | None:
    """A problem when a setting listed in ``BOUNDS`` or ``UPPER_BOUNDS`` (under ``bound``, default ``path``) is
    out of its range."""
    bound = bound or path
    if bound not in BOUNDS or not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    lowest, allowed = BOUNDS[bound]
    highest = UPPER_BOUNDS.get(bound)
    if value != value:
        return Problem(path, f"must be a number, got {value!r}", where)
    if highest is not None and value > highest:
        return Problem(path, f"must be within [{lowest:g}, {highest:g}], got {value!r}", where)
    if value > lowest or (allowed and value == lowest):
        return None
    return Problem(path, f"must be {'at least' if allowed else 'greater than'} {lowest:g}, got {value!r}", where)


def _suggest(name: str, options: list[str]) -> str:
    hint = did_you_mean(name, options)
    return f" ({hint})" if hint else ""


def _choices(annotation: Any) -> list[Any]:
    """The values a ``Literal`` annotation (possibly inside a union) allows."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(annotation) for c in _choices(a)]
    return []


def _type_problem(path: str, value: Any, annotation: Any, where: str | None) -> Problem:
    """``expected one of 'adam', 'adamw', 'sgd', got 'adamx' (did you mean ...?)``."""
    hint = _suggest(str(value), [str(c) for c in _choices(annotation)]) if isinstance(value, str) else ""
    return Problem(path, f"expected {_type_name(annotation)}, got {value!r}{hint}", where)


def _type_ok(value: Any, annotation: Any) -> bool:
    """Loose check of plain annotations; anything complex is accepted."""
    if value is None:
        origin_args = typing.get_args(annotation)
        return annotation is Any or type(None) in origin_args or annotation is inspect.Parameter.empty
    if annotation in (inspect.Parameter.empty, Any):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (list, tuple, typing.Sequence):
        return isinstance(value, (list, tuple))
    if origin in (dict, typing.Mapping):
        return isinstance(value, Mapping)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


def _hints(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: skip type checks
        return {}


def check_component(kind: str, spec: Any, path: str, recipe: Recipe | None = None,
                    injected: frozenset[str] = INJECTED_ARGS) -> list[Problem]:
    """Problems with one ``{name: ..., **args}`` component spec at recipe key ``path``."""
    where = recipe.where if recipe is not None else (lambda p: None)
    if not isinstance(spec, Mapping):
        return [Problem(path, f"must be a mapping with a 'name' key naming a registered {kind}", where(path))]
    if "name" not in spec:
        return [Problem(f"{path}.name", f"missing: which registered {kind} to use", where(path))]
    registry = registry_for(kind)
    name = spec["name"]
    if not isinstance(name, str):
        return [Problem(f"{path}.name", f"must be the name of a registered {kind}, got {name!r}",
                        where(f"{path}.name"))]
    if name not in registry:
        return [Problem(f"{path}.name", registry.unknown_message(str(name)), where(f"{path}.name"))]
    try:
        cls = registry.get(name)
    except RegistryError as exc:
        return [Problem(f"{path}.name", str(exc), where(f"{path}.name"))]
    params = inspect.signature(cls).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    hints = _hints(cls)
    problems: list[Problem] = []
    for key, value in spec.items():
        if key == "name":
            continue
        key_path = f"{path}.{key}"
        if key in injected and key in params:
            problems.append(Problem(key_path, "is derived from the previous component by the assembler; "
                                    "remove it from the recipe", where(key_path)))
        elif key not in params and not accepts_any:
            problems.append(Problem(key_path, "unexpected argument" + _suggest(key, named), where(key_path)))
        elif key in hints and not _type_ok(value, hints[key]):
            problems.append(_type_problem(key_path, value, hints[key], where(key_path)))
        elif (bad := _argument_problem(key_path, value, where(key_path))) is not None:
            problems.append(bad)
    for pname, p in params.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or pname in injected:
            continue
        if p.default is inspect.Parameter.empty and pname not in spec:
            problems.append(Problem(f"{path}.{pname}", "missing required argument", where(path)))
    return problems


def _type_name(annotation: Any) -> str:
    if _choices(annotation):
        return "one of " + ", ".join(repr(a) for a in _choices(annotation))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _check_section(key: str, value: Any, schema: type, recipe: Recipe, bounds: str | None = None) -> list[Problem]:
    """Problems of one settings section at ``key``; ``bounds`` is its name in ``BOUNDS`` when that differs
    (``init`` for ``init.0``). A field without a default must be given."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [Problem(key, f"must be a mapping of {schema.__name__} settings", recipe.where(key))]
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    problems = []
    for k, v in value.items():
        path = f"{key}.{k}"
        if k not in fields:
            problems.append(Problem(path, "unknown key" + _suggest(str(k), list(fields)), recipe.where(path)))
        elif not _type_ok(v, hints[k]):
            problems.append(_type_problem(path, v, hints[k], recipe.where(path)))
        elif (bad := _bound_problem(path, v, recipe.where(path), f"{bounds or key}.{k}")
              or _argument_problem(path, v, recipe.where(path))):
            problems.append(bad)
    for name, f in fields.items():
        if name not in value and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(Problem(f"{key}.{name}", "missing: required (docs/recipes.md)", recipe.where(key)))
    return problems


#: a dotted module path of a model (``encoders.video``, ``backends.0``).
MODULE_PATH = re.compile(r"[A-Za-z_0-9]+(\.[A-Za-z_0-9]+)*")


def _check_init(value: Any, recipe: Recipe) -> list[Problem]:
    """``init``: a list of parts, each an :class:`~avtoolkit.recipe.schema.InitConfig`.

    Only the settings are checked here: the files and the shapes of their tensors are checked
    when a run starts (before it writes anything), so a recipe naming a run that is yet to be
    trained validates.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        return [Problem("init", "must be a list of parts, e.g. [{path: runs/x/checkpoints/best.ckpt, "
                        "take: encoders.video}]", recipe.where("init"))]
    problems: list[Problem] = []
    for i, item in enumerate(value):
        key = f"init.{i}"
        problems += _check_section(key, item, LIST_SECTIONS["init"], recipe, bounds="init")
        if not isinstance(item, Mapping):
            continue
        for name in ("take", "into"):
            part = item.get(name)
            if isinstance(part, str) and not MODULE_PATH.fullmatch(part):
                problems.append(Problem(f"{key}.{name}", f"must be a dotted module path of the model such as "
                                        f"encoders.video or backends.0, got {part!r}", recipe.where(f"{key}.{name}")))
        if item.get("path") == "":
            problems.append(Problem(f"{key}.path", "is empty: name a checkpoint or state dict",
                                    recipe.where(f"{key}.path")))
    return problems


def _check_model(model: Any, recipe: Recipe) -> list[Problem]:
    where = recipe.where
    if not isinstance(model, Mapping):
        return [Problem("model", "must be a mapping with encoders, fusion, backends and head", where("model"))]
    problems: list[Problem] = []
    for k in model:
        if k not in MODEL_KEYS:
            problems.append(Problem(f"model.{k}", "unknown key" + _suggest(str(k), list(MODEL_KEYS)), where(f"model.{k}")))
    encoders = model.get("encoders")
    if not isinstance(encoders, Mapping) or not encoders:
        problems.append(Problem("model.encoders", "needs at least one encoder, keyed by modality "
                                "(video: {name: ...})", where("model.encoders")))
        encoders = {}
    for modality, spec in encoders.items():
        path = f"model.encoders.{modality}"
        found = check_component("encoder", spec, path, recipe)
        problems += found
        if not found:
            expected = getattr(registry_for("encoder").get(spec["name"]), "modality", None)
            if expected is not None and expected != modality:
                problems.append(Problem(path, f"encoder '{spec['name']}' reads {expected}, but is keyed "
                                        f"'{modality}'; key it '{expected}'", where(path)))
    fusion = model.get("fusion")
    if fusion is not None:
        problems += check_component("fusion", fusion, "model.fusion", recipe)
    elif len(encoders) > 1:
        problems.append(Problem("model.fusion", f"{len(encoders)} encoders need a fusion "
                                "(see `avtoolkit list-components --kind fusion`)", where("model")))
    backends = model.get("backends") or []
    if not isinstance(backends, list):
        problems.append(Problem("model.backends", "must be a list of backends", where("model.backends")))
        backends = []
    for i, spec in enumerate(backends):
        problems += check_component("backend", spec, f"model.backends.{i}", recipe)
    if model.get("head") is None:
        problems.append(Problem("model.head", "missing: which registered head to use", where("model")))
    else:
        problems += check_component("head", model["head"], "model.head", recipe)
    return problems


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be the first part of a run folder's name (``runs/<name>-<timestamp>``), or ``None``.

    Examples:
        >>> _name_problem("lrw-base") is None
        True
        >>> _name_problem("../../elsewhere/escaped")
        "must be one folder-name component (no path separator, no leading '..'), got '../../elsewhere/escaped'"
    """
    if (not name.strip() or "/" in name or "\\" in name or name in (".", "..") or name.startswith("..")
            or any(ord(c) < 32 for c in name)):
        return f"must be one folder-name component (no path separator, no leading '..'), got {name!r}"
    return None


def find_problems(recipe: Recipe, require_data: bool = False, check_data: bool = True,
                  model: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every problem in ``recipe`` (an empty list when it is valid); ``check_data=False`` leaves
    the ``data`` section's dataset unchecked (see :func:`validate_recipe`); ``model``: the model
    section the data feeds when it is not the recipe's own (a checkpoint's, in evaluation)."""
    problems: list[Problem] = []
    data = recipe.tree
    for key in data:
        if key not in TOP_LEVEL:
            problems.append(Problem(str(key), "unknown top-level key" + _suggest(str(key), sorted(TOP_LEVEL)),
                                    recipe.where(str(key))))
    for key, annotation in SCALARS.items():
        if key in data and data[key] is not None and not _type_ok(data[key], annotation):
            problems.append(_type_problem(key, data[key], annotation, recipe.where(key)))
        elif key in data and (bad := _bound_problem(key, data[key], recipe.where(key))
                              or _argument_problem(key, data[key], recipe.where(key))):
            problems.append(bad)
    if isinstance(data.get("name"), str) and (bad := _name_problem(data["name"])):
        problems.append(Problem("name", bad, recipe.where("name")))
    if "model" not in data:
        problems.append(Problem("model", "missing: the model section (encoders, fusion, backends, head)"))
    else:
        problems += _check_model(data["model"], recipe)
    if data.get("data") is not None and check_data:
        problems += check_component("dataset", data["data"], "data", recipe, injected=frozenset())
        if "model" in data or model is not None:
            from avtoolkit.recipe.audio_input import audio_input_problems

            problems += audio_input_problems(recipe, model)
    elif require_data:
        problems.append(Problem("data", "missing: the data section (which dataset, where it is)"))
    for key, schema in SECTIONS.items():
        if key in data and schema is not None:
            problems += _check_section(key, data[key], schema, recipe)
    if "init" in data:
        problems += _check_init(data["init"], recipe)
    return problems


def validate_recipe(recipe: Any, overrides: list[str] | None = None, require_data: bool = False,
                    check_data: bool = True, model: Mapping[str, Any] | None = None) -> Recipe:
    """Loads and checks a recipe; returns it when valid.

    Args:
        recipe: a path, a mapping or a :class:`Recipe`.
        overrides: ``key.path=value`` strings.
        require_data: also require a ``data`` section (training and evaluation do).
        check_data: check the ``data`` section against its dataset's signature. Rebuilding a
            model from a checkpoint passes ``False``: it reads no data, and looking the dataset
            up would import every dataset and with them Lightning.
        model: the model section the data feeds, when not the recipe's own (see :func:`find_problems`).

    Raises:
        RecipeError: listing every problem, each with its recipe path (and file:line).
    """
    loaded = load_recipe(recipe, overrides)
    problems = find_problems(loaded, require_data=require_data, check_data=check_data, model=model)
    if problems:
        raise RecipeError(problems, str(loaded.source) if loaded.source else None)
    return loaded
