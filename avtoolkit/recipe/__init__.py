"""Recipes: YAML files that name registered components and set their arguments."""

from avtoolkit.recipe.errors import Problem, RecipeError
from avtoolkit.recipe.loader import Recipe, deep_merge, load_recipe
from avtoolkit.recipe.overrides import apply_overrides, parse_override
from avtoolkit.recipe.validate import find_problems, validate_recipe

__all__ = [
    "Problem",
    "Recipe",
    "RecipeError",
    "apply_overrides",
    "deep_merge",
    "find_problems",
    "load_recipe",
    "parse_override",
    "validate_recipe",
]
