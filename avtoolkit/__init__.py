"""avtoolkit: lipreading and audio-visual speech recognition from registered components.

Examples:
    >>> from avtoolkit import build_model, load_recipe
"""

from avtoolkit.build import build_model
from avtoolkit.recipe import Recipe, RecipeError, load_recipe, validate_recipe

__version__ = "0.1.0"

__all__ = ["Recipe", "RecipeError", "build_model", "load_recipe", "validate_recipe", "__version__"]
