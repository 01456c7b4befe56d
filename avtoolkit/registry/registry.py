"""A small registry of named components, one instance per kind.

Modelled on fvcore's registry: components register by decorator or call, a registry
iterates and lists with ``fnmatch`` patterns, and an unknown name produces an error
that teaches (closest names, the command that lists the rest) instead of dumping
every name.
"""

from __future__ import annotations

from avtoolkit.errors import AvtoolkitError

import contextlib
import difflib
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


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
        summary: one-line description, known without importing for plugins once loaded.
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

    def __init__(self, kind: str, group: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str | None = None, obj: Callable[..., Any] | None = None, *, source: str = "avtoolkit"
    ) -> Any:
        """Registers ``obj`` under ``name``; used as ``@reg.register("name")`` or a call.

        Raises:
            RegistryError: the name is already registered (both sources are named).
        """

        def deco(target: Callable[..., Any]) -> Callable[..., Any]:
            key = name or getattr(target, "__name__")
            self._add(Entry(name=key, kind=self.kind, source=source, obj=target,
                            spec=f"{target.__module__}:{target.__qualname__}"))
            return target

        return deco(obj) if obj is not None else deco

    def _add(self, entry: Entry) -> None:
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
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entry(self, name: str) -> Entry:
        """The entry for ``name``.

        Raises:
            RegistryError: unknown name; the message lists the closest names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def get(self, name: str) -> Callable[..., Any]:
        """The component registered as ``name``, loading a plugin if needed."""
        return self.entry(name).load()

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"unknown {self.kind} '{name}'{hint} "
            f"(see `avtoolkit list-components --kind {self.kind}`)"
        )
