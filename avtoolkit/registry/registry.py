"""A small registry of named components, one instance per kind.

Modelled on fvcore's registry: components register by decorator or call, a registry
iterates and lists with ``fnmatch`` patterns, and an unknown name produces an error
that teaches (closest names, the command that lists the rest) instead of dumping
every name. Like MMEngine's, a registry knows its ``locations``: the packages whose
modules register its built-in components, imported on first use together with the
plugins of its entry-point ``group``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from avtoolkit.errors import AvtoolkitError
from avtoolkit.registry.suggest import did_you_mean


class RegistryError(AvtoolkitError, LookupError):
    """A name is unknown, registered twice, or its plugin failed to load."""


@dataclass
class Entry:
    """One registered component.

    Attributes:
        name: the name recipes use.
        kind: the registry kind (``encoder``, ``fusion``, ...).
        source: ``"avtoolkit"`` or ``"<distribution> <version>"`` for plugins.
        obj: the class or builder function, or ``None`` until a plugin is loaded.
        loader: loads ``obj`` on first use (plugins are imported lazily).
        error: why a plugin failed to load, if it did.
        spec: where the component lives, ``module:attribute`` (a plugin's entry-point value, or
            the module and name of a built-in one).
    """

    name: str
    kind: str
    source: str
    obj: Callable[..., Any] | None = None
    loader: Callable[[], Callable[..., Any]] | None = field(default=None, repr=False)
    error: str | None = None
    spec: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None

    def load(self) -> Callable[..., Any]:
        """Returns the component, importing a plugin on first use.

        Raises:
            RegistryError: the plugin failed to import; the original exception is chained.
        """
        if self.obj is None:
            if self.error is not None:
                raise RegistryError(
                    f"{self.kind} '{self.name}' from {self.source} is broken: {self.error}"
                )
            assert self.loader is not None
            try:
                self.obj = self.loader()
            except Exception as exc:  # a plugin may raise anything on import
                self.error = f"{type(exc).__name__}: {exc}"
                raise RegistryError(
                    f"{self.kind} '{self.name}' from {self.source} failed to load ({self.spec}): "
                    f"{self.error}"
                ) from exc
        return self.obj

    @property
    def summary(self) -> str:
        if self.obj is None:
            return "(not loaded)" if not self.broken else f"BROKEN: {self.error}"
        doc = inspect.getdoc(self.obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Named components of one kind.

    Args:
        kind: what the registry holds, used in messages (``"encoder"``).
        group: the entry-point group plugins of this kind use (``"avtoolkit.encoders"``).
        locations: packages holding the built-in components. When given (even empty), the
            first lookup imports every public module and subpackage under them (names
            starting with ``_`` are private helpers) and registers the installed plugins of
            ``group``. Without it the registry holds only what is registered into it, as a
            test's own registry should.
        check: called with each component when it is registered (a plugin: when it is
            first loaded); raises :class:`RegistryError` when the component breaks the
            kind's contract, so the mistake surfaces before any recipe uses it.

    Examples:
        >>> backends = Registry("backend", group="example.backends")
        >>> @backends.register("identity")
        ... class Identity:
        ...     '''Passes its input through.'''
        >>> backends.get("identity").__name__
        'Identity'
        >>> backends.names("id*")
        ['identity']
    """

    def __init__(self, kind: str, group: str | None = None, locations: Sequence[str] | None = None,
                 check: Callable[[Any], None] | None = None) -> None:
        self.kind = kind
        self.group = group
        self.check = check
        self.locations = list(locations) if locations is not None else None
        self._entries: dict[str, Entry] = {}
        self._loaded = locations is None
        self._load_error: Exception | None = None

    def _load(self) -> None:
        """Imports the built-in components and registers the plugins, once.

        Raises:
            RegistryError: two sources register one name; raised again on every later
                lookup, so a half-filled registry is never used as if it were complete.
        """
        if self._load_error is not None:
            raise self._load_error
        if self._loaded:
            return
        # Set first: the imported modules register into this registry while it loads.
        self._loaded = True
        try:
            for package in self.locations or ():
                _import_tree(package)
            from avtoolkit.registry.plugins import register_entry_points

            register_entry_points(self)
        except Exception as exc:
            self._load_error = exc
            raise

    def register(
        self, name: str | None = None, obj: Callable[..., Any] | None = None, *, source: str = "avtoolkit"
    ) -> Any:
        """Registers ``obj`` under ``name``; used as ``@reg.register("name")`` or a call.

        Raises:
            RegistryError: the name is already registered (both sources are named).
        """

        def deco(target: Callable[..., Any]) -> Callable[..., Any]:
            key = name or getattr(target, "__name__")
            if self.check is not None:
                self.check(target)
            self._add(Entry(name=key, kind=self.kind, source=source, obj=target,
                            spec=f"{target.__module__}:{target.__qualname__}"))
            return target

        return deco(obj) if obj is not None else deco

    def _add(self, entry: Entry) -> None:
        # Load first, so a name clash with a built-in or a plugin surfaces here, not later.
        self._load()
        old = self._entries.get(entry.name)
        if old is not None:
            raise RegistryError(
                f"{self.kind} '{entry.name}' is registered twice: by {old.source} ({old.spec}) "
                f"and by {entry.source} ({entry.spec}); rename one of them"
            )
        self._entries[entry.name] = entry

    def add_lazy(self, name: str, loader: Callable[[], Callable[..., Any]], *, source: str, spec: str,
                 error: str | None = None) -> None:
        """Registers a plugin component that is imported only when first used."""
        self._add(Entry(name=name, kind=self.kind, source=source, loader=loader, spec=spec, error=error))

    def unregister(self, name: str) -> Entry:
        """Removes ``name`` and returns its entry (tests and interactive sessions use this).

        Raises:
            RegistryError: unknown name.
        """
        entry = self.entry(name)
        del self._entries[name]
        return entry

    @contextlib.contextmanager
    def temporary(self, name: str, obj: Callable[..., Any], *, source: str = "avtoolkit") -> Iterator[Callable[..., Any]]:
        """Registers ``obj`` as ``name`` for the duration of a ``with`` block.

        The name is removed on exit even if the block raises, so a test that registers a
        tiny component leaves the shared registries as it found them.

        Raises:
            RegistryError: the name is already registered.

        Examples:
            >>> heads = Registry("head")
            >>> with heads.temporary("tiny", dict):
            ...     "tiny" in heads
            True
            >>> "tiny" in heads
            False
        """
        self.register(name, obj, source=source)
        try:
            yield obj
        finally:
            self._entries.pop(name, None)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        self._load()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entry(self, name: str) -> Entry:
        """The entry for ``name``.

        Raises:
            RegistryError: unknown name; the message lists the closest names.
        """
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def get(self, name: str) -> Callable[..., Any]:
        """The component registered as ``name``, loading a plugin if needed.

        Raises:
            RegistryError: unknown name, a plugin that fails to load or breaks the contract.
        """
        entry = self.entry(name)
        first_load = entry.obj is None
        obj = entry.load()
        if first_load and self.check is not None:
            try:
                self.check(obj)
            except RegistryError as exc:
                entry.obj, entry.error = None, str(exc)
                raise
        return obj

    def unknown_message(self, name: str) -> str:
        self._load()
        hint = did_you_mean(name, self._entries)
        hint = f"; {hint}" if hint else ""
        return (
            f"unknown {self.kind} '{name}'{hint} "
            f"(see `avtoolkit list-components --kind {self.kind}`)"
        )


def _import_tree(package: str) -> None:
    """Imports ``package`` and, recursively, its public modules and subpackages."""
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if not info.name.startswith("_"):
            name = f"{package}.{info.name}"
            if info.ispkg:
                _import_tree(name)
            else:
                importlib.import_module(name)
