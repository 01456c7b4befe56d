"""Command-line overrides: ``model.backends.0.layers=2`` sets one recipe key.

Values are parsed as YAML scalars (or flow collections), so ``2`` is an int, ``1e-3`` a
float, ``true`` a bool, ``null`` None, ``[a, b]`` a list and ``'2'`` a string.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from avtoolkit.recipe.bounded_yaml import safe_load_bounded
from avtoolkit.recipe.errors import RecipeError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$|^\d+$")
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits ``a.b.0=value`` into its key path and parsed value.

    Examples:
        >>> parse_override("model.backends.0.layers=2")
        (['model', 'backends', '0', 'layers'], 2)
        >>> parse_override("optim.lr=1e-3")
        (['optim', 'lr'], 0.001)
        >>> parse_override("data.words_list=[about, after]")
        (['data', 'words_list'], ['about', 'after'])

    Raises:
        RecipeError: no ``=``, an empty or malformed key, or a value that is not YAML.
    """
    if "=" not in text:
        raise RecipeError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not key.strip() or any(not _KEY.match(p) for p in parts):
        raise RecipeError(f"override '{text}': malformed key '{key}' (dotted names or list indices)")
    try:
        value = safe_load_bounded(raw)[0] if raw.strip() else ""
    except ValueError as exc:
        raise RecipeError(f"override '{text[:80]}': refused: the value {exc}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)
        detail = f"{exc.__class__.__name__}: {problem}" if problem else exc.__class__.__name__
        raise RecipeError(f"override '{text[:80]}': value is not valid YAML ({detail})") from None
    # YAML 1.1 reads an unquoted 1e-3 as a string (it wants a dot); users mean a float.
    # A quoted '1e-3' stays a string: quoting is how a user asks for one.
    if isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(raw.strip()):
        value = float(value)
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Returns a copy of ``data`` with each ``key=value`` override applied in order.

    A missing dict key is created (validation later reports it if it is unknown); a list
    index must exist.

    Raises:
        RecipeError: a malformed override, or a path that crosses a scalar or a missing index.
    """
    out = copy.deepcopy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = out
        for depth, part in enumerate(parts[:-1]):
            here = ".".join(parts[: depth + 1])
            if isinstance(node, list):
                node = node[_index(node, part, here, text)]
            elif isinstance(node, dict):
                if node.get(part) is None:
                    node[part] = {}
                node = node[part]
            else:
                raise RecipeError(f"override '{text}': '{here}' is a value, not a section")
            if not isinstance(node, (dict, list)):
                raise RecipeError(f"override '{text}': '{here}' is a value ({node!r}), not a section")
        last = parts[-1]
        if isinstance(node, list):
            node[_index(node, last, ".".join(parts), text)] = value
        else:
            node[last] = value
    return out


def _index(node: list[Any], part: str, here: str, text: str) -> int:
    if not part.isdigit():
        raise RecipeError(f"override '{text}': '{here}' indexes a list and needs a number")
    i = int(part)
    if i >= len(node):
        raise RecipeError(f"override '{text}': '{here}' is out of range (the list has {len(node)} items)")
    return i
