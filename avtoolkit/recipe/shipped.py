"""Recipes shipped with avtoolkit, usable by name: ``avtoolkit run lrw_effv2t data.root=...``.

The repository's top-level ``recipes/`` folder is installed as the package
``avtoolkit.recipes`` (see pyproject.toml), so a wheel install carries every recipe. A recipe
argument is a path when that file exists, otherwise the name of a shipped recipe.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from avtoolkit.recipe.errors import RecipeError
from avtoolkit.registry.suggest import did_you_mean

SUFFIX = ".yaml"


def shipped_dir() -> Path:
    """The folder holding the shipped recipes.

    In a source checkout (editable or run from the tree) that is ``recipes/`` beside the
    package, so a worktree sees its own recipes; installed, it is ``avtoolkit/recipes``.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "recipes").is_dir():
        return checkout / "recipes"
    spec = importlib.util.find_spec("avtoolkit.recipes")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a broken install
        raise RecipeError("this avtoolkit installation ships no recipes (avtoolkit.recipes is missing)")
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_names() -> list[str]:
    """Names of the shipped recipes, sorted.

    Examples:
        >>> "lrw_effv2t" in shipped_names()
        True
    """
    return sorted(p.stem for p in shipped_dir().glob(f"*{SUFFIX}"))


def shipped_path(name: str) -> Path | None:
    """The file of the shipped recipe ``name`` (``avasr`` or ``avasr.yaml``), or ``None``."""
    if not name or "/" in name or "\\" in name:
        return None
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    path = shipped_dir() / f"{stem}{SUFFIX}"
    return path if path.is_file() else None


def resolve_recipe(recipe: str | Path) -> Path:
    """A recipe argument as a file: an existing path, else a shipped recipe's name.

    Raises:
        RecipeError: neither a file nor a shipped recipe; names the close shipped names.

    Examples:
        >>> resolve_recipe("avasr").name
        'avasr.yaml'
    """
    path = Path(recipe)
    if path.exists():
        return path
    found = shipped_path(str(recipe))
    if found is not None:
        return found
    hint = did_you_mean(path.stem, shipped_names())
    raise RecipeError(f"recipe file not found: {recipe}; nor is it a shipped recipe"
                      f"{'; ' + hint if hint else ''} (see `avtoolkit recipes`)")


@dataclass(frozen=True)
class ShippedRecipe:
    """One shipped recipe: its name, one-line description and file."""

    name: str
    description: str
    path: Path


def shipped_recipes() -> list[ShippedRecipe]:
    """Every shipped recipe with its ``description`` (inherited through ``base:``)."""
    from avtoolkit.recipe.loader import load_recipe

    out = []
    for name in shipped_names():
        path = shipped_dir() / f"{name}{SUFFIX}"
        description = str(load_recipe(path).get("description") or "")
        out.append(ShippedRecipe(name=name, description=description.strip().splitlines()[0] if description else "",
                                 path=path))
    return out


def copy_recipe(name: str, destination: str | Path) -> Path:
    """Copies the shipped recipe ``name`` to ``destination`` to edit, with ``base:`` made usable.

    A ``base:`` that names a shipped recipe keeps working from anywhere, because bases
    resolve to shipped recipes when no file of that name is beside the copy.

    Raises:
        RecipeError: unknown name, or ``destination`` already exists (never overwritten).
    """
    source = shipped_path(name)
    if source is None:
        hint = did_you_mean(name, shipped_names())
        raise RecipeError(f"no shipped recipe '{name}'{'; ' + hint if hint else ''} (see `avtoolkit recipes`)")
    target = Path(destination)
    if target.is_dir():
        target = target / source.name
    if target.exists():
        raise RecipeError(f"{target} already exists; choose another file (it is never overwritten)")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
