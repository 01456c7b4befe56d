"""Human- and machine-readable descriptions of registered components."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from avtoolkit.registry.kinds import registry_for
from avtoolkit.registry.registry import Entry

#: Constructor arguments the assembler fills in (sizes it reads from the part before); a recipe
#: must not set them, and a description does not list them. Defined here, the lowest layer that
#: needs it, so that recipe validation and the model contract read one set.
INJECTED_ARGS: frozenset[str] = frozenset({"input_dim", "input_dims", "input_rates"})


def _annotation(obj: Any, name: str, param: inspect.Parameter) -> str:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        hint = typing.get_type_hints(target).get(name, param.annotation)
    except Exception:
        hint = param.annotation
    if hint is inspect.Parameter.empty:
        return ""
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    return text or str(hint).replace("typing.", "")


def arguments(entry: Entry) -> list[dict[str, Any]]:
    """The recipe arguments of a loaded component: name, type, default, required."""
    if entry.obj is None:
        return []
    out = []
    for name, p in inspect.signature(entry.obj).parameters.items():
        if name in INJECTED_ARGS or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        required = p.default is inspect.Parameter.empty
        out.append({
            "name": name,
            "type": _annotation(entry.obj, name, p),
            "default": None if required else p.default,
            "required": required,
        })
    return out


def as_dict(entry: Entry, full: bool = False) -> dict[str, Any]:
    """A JSON-ready description of a component."""
    row: dict[str, Any] = {
        "kind": entry.kind,
        "name": entry.name,
        "source": entry.source,
        "spec": entry.spec,
        "summary": entry.summary,
        "broken": entry.broken,
        "error": entry.error,
        "arguments": arguments(entry),
    }
    if full:
        row["doc"] = inspect.getdoc(entry.obj) if entry.obj is not None else None
    return row


def format_args(args: list[dict[str, Any]]) -> str:
    """``width=64, layers=2, vocab`` style summary of arguments."""
    parts = []
    for a in args:
        parts.append(a["name"] if a["required"] else f"{a['name']}={a['default']!r}")
    return ", ".join(parts)


def argument_default(kind: str, name: str, argument: str) -> Any:
    """The default of one constructor argument of a registered component.

    Raises:
        RegistryError: unknown kind or name.
        KeyError: the component has no such argument, or it is required.
    """
    param = inspect.signature(registry_for(kind).get(name)).parameters[argument]
    if param.default is inspect.Parameter.empty:
        raise KeyError(f"{kind} '{name}' argument '{argument}' has no default")
    return param.default
