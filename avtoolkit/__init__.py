"""avtoolkit: lipreading and audio-visual speech recognition from registered components.

The package attributes are imported lazily (PEP 562) so that ``avtoolkit --help`` and
other light commands start without importing torch.

Examples:
    >>> from avtoolkit import build_model, load_recipe
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {
    "build_model": "avtoolkit.build",
    "Recipe": "avtoolkit.recipe",
    "RecipeError": "avtoolkit.recipe",
    "load_recipe": "avtoolkit.recipe",
    "validate_recipe": "avtoolkit.recipe",
}

__all__ = ["Recipe", "RecipeError", "build_model", "load_recipe", "validate_recipe", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from avtoolkit.build import build_model
    from avtoolkit.recipe import Recipe, RecipeError, load_recipe, validate_recipe


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'avtoolkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
