"""``argparse`` types shared by the subcommands: a bad value is refused before any work starts."""

from __future__ import annotations

import argparse
import math
from pathlib import Path


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


def finite_float(text: str) -> float:
    """A finite number (no ``nan``, ``inf``).

    Examples:
        >>> finite_float("1.7")
        1.7
        >>> finite_float("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a finite number, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _float_from(text: str, lowest: float, inclusive: bool) -> float:
    value = finite_float(text)
    if value < lowest or (value == lowest and not inclusive):
        raise argparse.ArgumentTypeError(f"must be a number {'at least' if inclusive else 'greater than'} "
                                         f"{lowest:g}, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (``--scale``); :func:`nonnegative_float` allows 0.

    Examples:
        >>> positive_float("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a number greater than 0, got '0'
        >>> nonnegative_float("0")
        0.0
    """
    return _float_from(text, 0.0, inclusive=False)


def nonnegative_float(text: str) -> float:
    """A finite number >= 0 (``--atol``)."""
    return _float_from(text, 0.0, inclusive=True)


def output_file(path: str, option: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a file a command will write: refused (before any work) when it is an existing
    folder, when its parent is an existing file, or when it does not end in one of ``suffixes``.

    Raises:
        UsageError: naming ``option`` and the path.

    Examples:
        >>> output_file("/tmp", "--out")
        Traceback (most recent call last):
        ...
        avtoolkit.errors.UsageError: --out /tmp: is an existing folder; name the file to write
    """
    from avtoolkit.errors import UsageError

    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {path}: is an existing folder; name the file to write")
    if suffixes and p.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: writes {' or '.join(s.lstrip('.').upper() for s in suffixes)}; "
                         f"name it {' or '.join('*' + s for s in suffixes)}")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{option} {path}: {parent} is a file, not a folder")
            break
    return p


def output_folder(path: str, option: str) -> Path:
    """``path`` as a folder a command will write into: refused when it is an existing file (or lies
    under one).

    Raises:
        UsageError: naming ``option`` and the path.
    """
    from avtoolkit.errors import UsageError

    p = Path(path)
    for candidate in (p, *p.parents):
        if candidate.exists():
            if not candidate.is_dir():
                where = "is an existing file" if candidate == p else f"lies under {candidate}, a file"
                raise UsageError(f"{option} {path}: {where}; name a folder to write into")
            break
    return p


def seed(text: str) -> int:
    """A whole number within [0, 2**32 - 1], what numpy's and torch's generators take (``--seed``).

    Examples:
        >>> seed("-1")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a whole number within [0, 2**32 - 1], got '-1'
    """
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be a whole number within [0, 2**32 - 1], got {text!r}")
    return value
