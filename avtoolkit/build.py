"""``build_model``: a recipe in, an ``nn.Module`` out."""

from __future__ import annotations

from typing import Any

from avtoolkit.models.assemble import AVModel, assemble
from avtoolkit.recipe import Recipe, validate_recipe


def build_model(recipe: Any, overrides: list[str] | None = None) -> AVModel:
    """Builds the model a recipe describes.

    Args:
        recipe: a recipe path, a mapping with a ``model`` section, or a loaded :class:`Recipe`.
        overrides: ``key.path=value`` strings, e.g. ``["model.backends.0.layers=2"]``.

    Returns:
        The assembled :class:`~avtoolkit.models.AVModel` (an ``nn.Module``).

    Raises:
        RecipeError: the recipe does not validate (every problem listed with its path).

    Examples:
        >>> model = build_model({"model": {
        ...     "encoders": {"audio": {"name": "audio_cnn"}},
        ...     "head": {"name": "ctc"}}})
        >>> model.task
        'ctc'
    """
    loaded: Recipe = validate_recipe(recipe, overrides)
    return assemble(loaded["model"])
