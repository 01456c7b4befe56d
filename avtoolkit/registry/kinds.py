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
    """The registry of ``kind``, after avtoolkit's components and plugins of that kind are registered.

    Raises:
        RegistryError: unknown kind, or two sources register one name.
    """
    if kind not in KINDS:
        raise RegistryError(f"unknown component kind '{kind}'; kinds are: {', '.join(KINDS)}")
    ensure_loaded(kind)
    return KINDS[kind]


_LOADED: set[str] = set()
_LOAD_ERRORS: dict[str, Exception] = {}


def ensure_loaded(kind: str | None = None) -> None:
    """Imports avtoolkit's own components of ``kind`` (default: every kind) and registers
    the installed plugins of that kind, once per kind.

    Kinds load separately so that, for example, validating a model section does not import
    the datasets and Lightning.

    Raises:
        RegistryError: two sources register one name (raised again on every later call,
            so a half-filled registry is never used as if it were complete).
    """
    for k in [kind] if kind is not None else list(KINDS):
        if k in _LOAD_ERRORS:
            raise _LOAD_ERRORS[k]
        if k in _LOADED:
            continue
        _LOADED.add(k)
        try:
            from avtoolkit.components import import_builtin
            from avtoolkit.registry.plugins import register_entry_points

            import_builtin(k)
            register_entry_points(KINDS[k])
        except Exception as exc:
            _LOAD_ERRORS[k] = exc
            raise
