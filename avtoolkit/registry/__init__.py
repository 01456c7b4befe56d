"""The registry layer: one ``Registry`` per component kind, filled by avtoolkit's own
modules (decorators) and by plugins (entry points)."""

from avtoolkit.registry.registry import Entry, Registry, RegistryError
from avtoolkit.registry.kinds import (
    BACKENDS,
    DATASETS,
    ENCODERS,
    FUSIONS,
    HEADS,
    KINDS,
    OBJECTIVES,
    registry_for,
)

__all__ = [
    "Entry",
    "Registry",
    "RegistryError",
    "ENCODERS",
    "FUSIONS",
    "BACKENDS",
    "HEADS",
    "DATASETS",
    "OBJECTIVES",
    "KINDS",
    "registry_for",
]
