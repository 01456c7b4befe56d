"""The registries avtoolkit uses, one per kind, and their entry-point groups."""

from __future__ import annotations

from avtoolkit.registry.registry import Registry, RegistryError

ENCODERS = Registry("encoder", group="avtoolkit.encoders")
FUSIONS = Registry("fusion", group="avtoolkit.fusions")
BACKENDS = Registry("backend", group="avtoolkit.backends")
HEADS = Registry("head", group="avtoolkit.heads")
DATASETS = Registry("dataset", group="avtoolkit.datasets")

KINDS: dict[str, Registry] = {
    "encoder": ENCODERS,
    "fusion": FUSIONS,
    "backend": BACKENDS,
    "head": HEADS,
    "dataset": DATASETS,
}


def registry_for(kind: str) -> Registry:
    """The registry of ``kind``, after avtoolkit's components and plugins are registered.

    Raises:
        RegistryError: unknown kind.
    """
    if kind not in KINDS:
        raise RegistryError(f"unknown component kind '{kind}'; kinds are: {', '.join(KINDS)}")
    ensure_loaded()
    return KINDS[kind]


_LOADED = False
_LOAD_ERROR: Exception | None = None


def ensure_loaded() -> None:
    """Imports avtoolkit's own components and registers installed plugins, once.

    Raises:
        RegistryError: two sources register one name (raised again on every later call,
            so a half-filled registry is never used as if it were complete).
    """
    global _LOADED, _LOAD_ERROR
    if _LOAD_ERROR is not None:
        raise _LOAD_ERROR
    if _LOADED:
        return
    _LOADED = True
    try:
        import avtoolkit.components  # noqa: F401  (registers built-in components)
        from avtoolkit.registry.plugins import register_entry_points

        for reg in KINDS.values():
            register_entry_points(reg)
    except Exception as exc:
        _LOAD_ERROR = exc
        raise
