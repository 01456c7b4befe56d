"""Loads YAML recipes: ``base:`` inheritance, command-line overrides, line numbers."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from avtoolkit.recipe.bounded_yaml import safe_load_bounded
from avtoolkit.recipe.errors import Problem, RecipeError
from avtoolkit.recipe.overrides import apply_overrides
from avtoolkit.recipe.shipped import resolve_recipe, shipped_path


@dataclass
class Recipe:
    """A resolved recipe: plain data plus where each key came from.

    Attributes:
        tree: the whole merged recipe as nested dicts (``base`` resolved, overrides applied);
            ``recipe["data"]`` is its dataset section.
        source: the recipe file, if any.
        lines: ``dotted.key -> "file:line"`` for keys read from files.
    """

    tree: dict[str, Any]
    source: Path | None = None
    lines: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.tree[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.tree.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.tree

    @property
    def name(self) -> str:
        """The recipe's ``name``, or its file stem."""
        if self.tree.get("name"):
            return str(self.tree["name"])
        return self.source.stem if self.source else "recipe"

    def where(self, path: str) -> str | None:
        """``file:line`` of a dotted key, or of its closest parent that has one."""
        parts = path.split(".")
        while parts:
            found = self.lines.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return None

    def resolve_path(self, path: str) -> Path:
        """A file the recipe names (``pretrained.path``, ``init.0.path``): as given, from the working
        directory, when it exists there; else beside the recipe file when it exists there; else as given.

        Examples:
            >>> Recipe({}, source=Path("/tmp/r/recipe.yaml")).resolve_path("/abs/w.pt").as_posix()
            '/abs/w.pt'
        """
        p = Path(path).expanduser()
        if not p.exists() and not p.is_absolute() and self.source is not None:
            beside = Path(self.source).parent / p
            if beside.exists():
                return beside
        return p

    def to_yaml(self) -> str:
        """The resolved recipe as YAML (what a run writes next to its outputs)."""
        return yaml.safe_dump(self.tree, sort_keys=False, default_flow_style=None)

    def copy_with(self, tree: dict[str, Any]) -> "Recipe":
        return Recipe(tree=tree, source=self.source, lines=dict(self.lines))


def _line_map(node: yaml.Node, file: str, prefix: str, out: dict[str, str]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            out[key] = f"{file}:{key_node.start_mark.line + 1}"
            _line_map(value_node, file, key, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key = f"{prefix}.{i}"
            out[key] = f"{file}:{item.start_mark.line + 1}"
            _line_map(item, file, key, out)


def _duplicate_keys(node: yaml.Node, file: str, prefix: str = "") -> list[Problem]:
    """A key given twice in one mapping (YAML keeps the last without a word): one problem each."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = f"{prefix}.{key}" if prefix else key
            line = key_node.start_mark.line + 1
            if key in first:
                problems.append(Problem(path, f"given twice (first on line {first[key]}); YAML would keep only "
                                        "this last one: remove one", f"{file}:{line}"))
            first.setdefault(key, line)
            problems += _duplicate_keys(value_node, file, path)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, file, f"{prefix}.{i}")
    return problems


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    if path.is_dir():
        raise RecipeError(f"{path} is a folder, not a recipe file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"recipe file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}); is it a recipe?") from None
    try:
        data, node = safe_load_bounded(text)
    except ValueError as exc:
        raise RecipeError([Problem("", f"refused: {exc}", str(path))], str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise RecipeError([Problem("", f"invalid YAML: {problem}", where)], str(path)) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of sections, got {type(data).__name__}")
    duplicates = _duplicate_keys(node, str(path)) if node is not None else []
    if duplicates:
        raise RecipeError(duplicates, str(path))
    lines: dict[str, str] = {}
    if node is not None:
        _line_map(node, str(path), "", lines)
    return data, lines


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merges ``over`` into ``base``: mappings merge key by key, anything else replaces.

    Examples:
        >>> deep_merge({"a": {"x": 1, "y": 2}, "l": [1]}, {"a": {"y": 3}, "l": [2]})
        {'a': {'x': 1, 'y': 3}, 'l': [2]}
    """
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_recipes(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`deep_merge` of a recipe over its ``base``, except that a model component (an encoder, the
    fusion, the head) whose ``name`` changes replaces the base's: one component's arguments mean
    nothing to another. (``backends`` is a list, which replaces anyway.)

    Examples:
        >>> base = {"model": {"encoders": {"video": {"name": "video_cnn", "channels": [8]}}}, "optim": {"lr": 1}}
        >>> merge_recipes(base, {"model": {"encoders": {"video": {"name": "effnetv2_3d", "size": "t"}}}})["model"]
        {'encoders': {'video': {'name': 'effnetv2_3d', 'size': 't'}}}
        >>> merge_recipes(base, {"model": {"encoders": {"video": {"channels": [16]}}}})["model"]["encoders"]
        {'video': {'name': 'video_cnn', 'channels': [16]}}
    """
    merged = deep_merge(base, over)
    old_model, new_model = base.get("model"), over.get("model")
    if not (isinstance(old_model, Mapping) and isinstance(new_model, Mapping)):
        return merged
    pairs = [(old_model, new_model, merged["model"], key) for key in ("fusion", "head")]
    old_enc, new_enc = old_model.get("encoders"), new_model.get("encoders")
    if isinstance(old_enc, Mapping) and isinstance(new_enc, Mapping):
        pairs += [(old_enc, new_enc, merged["model"]["encoders"], key) for key in new_enc]
    for old, new, out, key in pairs:
        before, after = old.get(key), new.get(key)
        if (isinstance(before, Mapping) and isinstance(after, Mapping) and "name" in after
                and after["name"] != before.get("name")):
            out[key] = copy.deepcopy(dict(after))
    return merged


def _load_file(path: Path, chain: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise RecipeError(f"recipe bases form a cycle: {cycle}")
    data, lines = _read_yaml(path)
    if "base" in data and not data["base"]:
        raise RecipeError([Problem("base", "is empty: name the recipe this one extends, or remove the key",
                                   lines.get("base"))], str(path))
    base = data.pop("base", None)
    if base is None:
        return data, lines
    bases = base if isinstance(base, list) else [base]
    merged: dict[str, Any] = {}
    merged_lines: dict[str, str] = {}
    for b in bases:
        if not isinstance(b, str):
            raise RecipeError([Problem("base", f"must be a file name, got {b!r}", lines.get("base"))], str(path))
        # A file beside the recipe first, then a shipped recipe of that name, so a copy made
        # by `avtoolkit recipes cp` keeps its `base: avasr.yaml` working from anywhere.
        base_path = path.parent / b
        if not base_path.exists():
            base_path = shipped_path(b) or base_path
        if not base_path.exists():
            raise RecipeError([Problem("base", f"base recipe '{b}' not found (looked in {path.parent} "
                                       "and the shipped recipes)", lines.get("base"))], str(path))
        if not base_path.is_file():
            raise RecipeError([Problem("base", f"'{b}' is a folder ({base_path}), not a recipe file",
                                       lines.get("base"))], str(path))
        bdata, blines = _load_file(base_path, (*chain, path))
        if not bdata:
            raise RecipeError([Problem("base", f"base recipe '{b}' ({base_path}) is empty", lines.get("base"))],
                              str(path))
        merged = merge_recipes(merged, bdata)
        merged_lines.update(blines)
    merged = merge_recipes(merged, data)
    merged_lines.update(lines)
    return merged, merged_lines


def load_recipe(recipe: Any, overrides: list[str] | None = None) -> Recipe:
    """Loads a recipe from a path, a shipped recipe's name, a dict or a :class:`Recipe`, and
    applies overrides.

    The result is not yet validated; :func:`avtoolkit.recipe.validate_recipe` checks it.

    Args:
        recipe: a YAML file path, a shipped recipe's name (``"lrw_effv2t"``, see
            ``avtoolkit recipes``), a mapping with the same structure, or a loaded recipe.
        overrides: ``key.path=value`` strings, applied in order.

    Returns:
        The resolved :class:`Recipe`.

    Raises:
        RecipeError: missing file, invalid YAML, a bad ``base`` or a bad override.

    Examples:
        >>> r = load_recipe({"model": {"head": {"name": "ctc"}}}, ["model.head.dropout=0.1"])
        >>> r["model"]["head"]
        {'name': 'ctc', 'dropout': 0.1}
    """
    if isinstance(recipe, Recipe):
        loaded = recipe.copy_with(copy.deepcopy(recipe.tree))
    elif isinstance(recipe, Mapping):
        data = copy.deepcopy(dict(recipe))
        if "base" in data:
            raise RecipeError("'base' is only understood in recipe files (it is resolved relative to the file)")
        loaded = Recipe(tree=data)
    elif isinstance(recipe, (str, Path)):
        path = resolve_recipe(recipe)
        data, lines = _load_file(path)
        loaded = Recipe(tree=data, source=path, lines=lines)
    else:
        raise TypeError(f"a recipe is a path, a mapping or a Recipe, not {type(recipe).__name__}")
    if overrides:
        try:
            loaded.tree = apply_overrides(loaded.tree, list(overrides))
        except RecipeError as exc:
            exc.add_note(f"while applying overrides to {loaded.source or 'the recipe'}")
            raise
        for text in overrides if loaded.source is not None else ():
            # A problem in an overridden key points at the command line, not the file.
            key = text.split("=", 1)[0].strip()
            loaded.lines = {k: v for k, v in loaded.lines.items() if k != key and not k.startswith(key + ".")}
            loaded.lines[key] = f"override '{text}'"
    _drop_disabled_encoders(loaded.tree)
    # `pretrained: PATH` is shorthand for `pretrained: {path: PATH}` (strict load).
    if isinstance(loaded.tree.get("pretrained"), (str, Path)):
        loaded.tree["pretrained"] = {"path": str(loaded.tree["pretrained"])}
    return loaded


def _drop_disabled_encoders(data: dict[str, Any]) -> None:
    """Removes encoders set to ``null``, so a recipe can drop a modality of its base.

    ``model: {encoders: {video: null}}`` in a child recipe (or ``model.encoders.video=null``
    on the command line) means "no video encoder"; everything downstream sees a plain
    mapping of the encoders that remain.
    """
    model = data.get("model")
    encoders = model.get("encoders") if isinstance(model, dict) else None
    if isinstance(encoders, dict):
        model["encoders"] = {m: spec for m, spec in encoders.items() if spec is not None}
