"""``avtoolkit validate``: check a recipe without training."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a recipe: component names, arguments, sections")
    p.add_argument("recipe", help="recipe file or shipped recipe name (see `avtoolkit recipes`)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides")
    p.set_defaults(handler=validate)


def validate(args: argparse.Namespace) -> int:
    from avtoolkit.recipe import validate_recipe

    recipe = validate_recipe(args.recipe, args.overrides)
    model = recipe["model"]
    parts = [f"{m}:{s['name']}" for m, s in model["encoders"].items()]
    if model.get("fusion"):
        parts.append(f"fusion:{model['fusion']['name']}")
    parts += [b["name"] for b in model.get("backends") or []]
    parts.append(model["head"]["name"])
    print(f"{args.recipe}: OK ({' -> '.join(parts)})")
    return 0
