"""Imports avtoolkit's built-in component modules so their ``@register`` decorators run.

Every module in a kind's folder is imported when that kind's registry is first used
(``registry_for(kind)``); modules whose names start with ``_`` are private helpers. A
component module registers in the registry of its own folder's kind, so listing encoders
never pays for importing the datasets (and Lightning).
"""

from __future__ import annotations

import importlib
import pkgutil

#: kind -> the package whose modules register components of that kind
PACKAGES: dict[str, str] = {
    "encoder": "avtoolkit.models.encoders",
    "fusion": "avtoolkit.models.fusion",
    "backend": "avtoolkit.models.backends",
    "head": "avtoolkit.models.heads",
    "dataset": "avtoolkit.datasets",
}


def import_builtin(kind: str) -> None:
    """Imports every public module of ``kind``'s package (a no-op once imported)."""
    package = importlib.import_module(PACKAGES[kind])
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            # a corpus folder (datasets/lrw/) registers its component in its datamodule.py
            importlib.import_module(f"{PACKAGES[kind]}.{info.name}" + (".datamodule" if info.ispkg else ""))


def import_all() -> None:
    """Imports the built-in components of every kind."""
    for kind in PACKAGES:
        import_builtin(kind)
