"""``avtoolkit recipes``: list the shipped recipes; ``avtoolkit recipes cp NAME FILE``: copy one."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipes", help="list the shipped recipes (usable by name), or copy one to edit",
        description="Every command that takes a recipe accepts a shipped recipe's name "
        "(`avtoolkit run lrw_effv2t data.root=...`) as well as a file.",
    )
    p.set_defaults(handler=list_recipes)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    cp = actions.add_parser("cp", help="copy a shipped recipe to FILE to edit (never overwrites)")
    cp.add_argument("name", help="a shipped recipe's name, as `avtoolkit recipes` lists it")
    cp.add_argument("file", help="where to write the copy (an existing folder takes NAME.yaml)")
    cp.set_defaults(handler=copy)


def _parameters(path) -> str:
    """The model's parameter count, built on the meta device (no memory, no weights)."""
    import torch

    from avtoolkit.build import build_model
    from avtoolkit.errors import AvtoolkitError

    try:
        with torch.device("meta"):
            model = build_model(path)
    except AvtoolkitError:  # a component from a plugin that is not installed
        return "-"
    return f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M"


def list_recipes(args: argparse.Namespace) -> int:
    from avtoolkit.recipe.shipped import shipped_recipes

    recipes = shipped_recipes()
    width = max(len(r.name) for r in recipes)
    print(f"{'NAME':<{width}}  {'PARAMS':>7}  DESCRIPTION")
    for r in recipes:
        print(f"{r.name:<{width}}  {_parameters(r.path):>7}  {r.description}")
    print("\nrun one by name (avtoolkit run NAME data.root=...), or copy it to edit: avtoolkit recipes cp NAME FILE")
    return 0


def copy(args: argparse.Namespace) -> int:
    from avtoolkit.recipe.shipped import copy_recipe

    target = copy_recipe(args.name, args.file)
    print(f"{args.name} -> {target}")
    return 0
