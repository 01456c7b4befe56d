"""The one did-you-mean rule for unknown names (components, recipe keys, choices)."""

from __future__ import annotations

import difflib
from typing import Iterable

#: similarity (difflib ratio) a known name needs to be suggested; one value everywhere so a
#: typo is suggested the same way in a recipe key, a component name and a setting's value.
CUTOFF = 0.6


def close_names(name: object, options: Iterable[object], n: int = 3) -> list[str]:
    """Up to ``n`` of ``options`` closest to ``name``, best first.

    Examples:
        >>> close_names("adamx", ["adam", "adamw", "sgd"])
        ['adam', 'adamw']
        >>> close_names("transformer", ["tcn", "ms_tcn"])
        []
    """
    return difflib.get_close_matches(str(name), [str(o) for o in options], n=n, cutoff=CUTOFF)


def did_you_mean(name: object, options: Iterable[object]) -> str:
    """``"did you mean 'a', 'b'?"``, or ``""`` when nothing is close.

    Examples:
        >>> did_you_mean("beem", ["greedy", "beam"])
        "did you mean 'beam'?"
    """
    close = close_names(name, options)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else ""
