"""Discovery of third-party components through entry points.

A distribution declares, in one group per kind::

    [project.entry-points."avtoolkit.encoders"]
    resnet18_3d = "avtoolkit_resnet.encoder:ResNet18Frontend"

Entries are registered lazily: listing reads only the metadata, the module is imported
when the component is first described or built. A plugin that fails is a warning and a
row marked broken, unless ``AVTOOLKIT_STRICT_PLUGINS=1`` makes it an error.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from typing import Any, Callable, Iterable

from avtoolkit.registry.registry import Registry, RegistryError


class PluginWarning(UserWarning):
    """A plugin entry point could not be registered or loaded."""


def strict_plugins() -> bool:
    """Whether plugin failures are errors (``AVTOOLKIT_STRICT_PLUGINS=1``)."""
    return os.environ.get("AVTOOLKIT_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def _source(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "unknown distribution"
    return f"{dist.metadata['Name']} {dist.version}"


def _loader(ep: md.EntryPoint) -> Callable[[], Any]:
    def load() -> Any:
        return ep.load()

    return load


def register_entry_points(registry: Registry, entry_points: Iterable[md.EntryPoint] | None = None) -> None:
    """Adds the plugins of ``registry.group`` to ``registry`` without importing them.

    Args:
        registry: the registry to fill; its ``group`` names the entry-point group.
        entry_points: for tests; by default those installed in this environment.

    Raises:
        RegistryError: in strict mode, a name clash or a broken plugin.
    """
    if registry.group is None:
        return
    eps = list(entry_points) if entry_points is not None else list(md.entry_points(group=registry.group))
    strict = strict_plugins()
    for ep in eps:
        source = _source(ep)
        try:
            registry.add_lazy(ep.name, _loader(ep), source=source, spec=ep.value)
        except RegistryError:
            # A clash is always an error: silently picking one of two would change models.
            raise
        if strict:
            entry = registry.entry(ep.name)
            entry.load()


def load_or_warn(registry: Registry) -> None:
    """Imports every plugin of ``registry`` so broken ones are marked; warns per failure."""
    for entry in registry:
        if entry.obj is None and entry.error is None:
            try:
                entry.load()
            except RegistryError as exc:
                if strict_plugins():
                    raise
                warnings.warn(str(exc), PluginWarning, stacklevel=2)
