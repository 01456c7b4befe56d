"""``argparse`` types shared by the subcommands: a bad value is refused before any work starts."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """A whole number >= 1 (``--top``, ``--workers``, sizes); anything else is a usage error.

    Examples:
        >>> positive_int("3")
        3
        >>> positive_int("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a positive whole number, got '0'
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def split_recipe_argument(args: argparse.Namespace) -> None:
    """Moves a first ``key=value`` that argparse took for RECIPE to the overrides (``run``, ``eval``)."""
    # argparse cannot tell an omitted RECIPE from a first override: `key=value` is an override.
    if args.recipe is not None and "=" in args.recipe:
        args.overrides = [args.recipe, *args.overrides]
        args.recipe = None
