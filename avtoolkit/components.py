"""Imports every built-in component module so its ``@register`` decorators run.

New modules under ``models/encoders``, ``models/fusion``, ``models/backends``,
``models/heads`` and ``data/datasets`` are found automatically.
"""

from __future__ import annotations

import importlib
import pkgutil

_PACKAGES = (
    "avtoolkit.models.encoders",
    "avtoolkit.models.fusion",
    "avtoolkit.models.backends",
    "avtoolkit.models.heads",
    "avtoolkit.data.datasets",
)

for _package in _PACKAGES:
    _mod = importlib.import_module(_package)
    for _info in pkgutil.iter_modules(_mod.__path__):
        if not _info.name.startswith("_"):
            importlib.import_module(f"{_package}.{_info.name}")
