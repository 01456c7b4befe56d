"""``NpzClipStore``: one compressed ``<root>/<key>.npz`` per clip, the format of every cache so far."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from avtoolkit.atomic import atomic_write
from avtoolkit.store.base import Clip, ClipStore

#: the member holding a clip's metadata as a JSON string (absent when there is none).
META_NAME = "__meta__"
SUFFIX = ".npz"


class NpzClipStore(ClipStore):
    """Clips as ``<root>/<key>.npz`` (``np.savez_compressed``), each written through :func:`~avtoolkit.atomic.atomic_write`.

    Metadata, when given, is one extra member ``__meta__`` (a JSON string); clips written
    without it are exactly the files the caches have always held.

    Args:
        root: the store's folder (made on the first write).
        length_array: the array whose first dimension is a clip's length.

    Examples:
        >>> import tempfile
        >>> store = NpzClipStore(tempfile.mkdtemp())
        >>> store.write("s1/a", {"rois": np.zeros((3, 2, 2), np.uint8)}, {"fps": 25})
        >>> store.keys(), store.lengths(), store.read("s1/a").meta
        (['s1/a'], {'s1/a': 3}, {'fps': 25})
    """

    def __init__(self, root: str | os.PathLike[str], length_array: str = "rois") -> None:
        self.root = Path(root)
        self.length_array = length_array

    def __repr__(self) -> str:
        return f"NpzClipStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file of ``key``.

        Raises:
            ValueError: ``key`` is absolute or climbs out of the store (``..``).
        """
        parts = PurePosixPath(key).parts
        if not parts or PurePosixPath(key).is_absolute() or ".." in parts or "\\" in key:
            raise ValueError(f"clip key {key!r}: expected a relative 'a/b/c' name inside the store")
        return self.root.joinpath(*parts[:-1], parts[-1] + SUFFIX)

    def where(self, key: str) -> str:
        return str(self.path(key))

    def write(self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> None:
        members = dict(arrays)
        if META_NAME in members:
            raise ValueError(f"array name {META_NAME!r} is reserved for the clip's metadata")
        if meta:
            members[META_NAME] = np.array(json.dumps(dict(meta), sort_keys=True))
        with atomic_write(self.path(key)) as fh:
            np.savez_compressed(fh, **members)

    def read(self, key: str, names: Sequence[str] | None = None) -> Clip:
        path = self.path(key)
        if not path.is_file():
            raise KeyError(f"no prepared clip {key!r} in {self.root}")
        try:
            with np.load(path, allow_pickle=False) as data:
                wanted = [n for n in data.files if n != META_NAME] if names is None else list(names)
                arrays = {n: data[n] for n in wanted}
                meta = json.loads(str(data[META_NAME])) if META_NAME in data.files else {}
        except Exception as exc:
            exc.add_note(f"while reading the prepared clip {path}; delete it to prepare it again")
            raise
        return Clip(arrays, meta)

    def contains(self, key: str) -> bool:
        return self.path(key).is_file()

    def damage(self, key: str) -> str | None:
        """Why ``<key>.npz`` is not whole: missing, empty, not a zip archive (a truncated one loses its
        central directory, which comes last), or without the length array's ``.npy`` header; read
        from the archive's directory and that one header, nothing decompressed."""
        path = self.path(key)
        try:
            if path.stat().st_size == 0:
                return "empty file"
            with zipfile.ZipFile(path) as zf:
                if self.length_array + ".npy" not in zf.namelist():
                    return f"no {self.length_array!r} array"
            self._length(key)
        except FileNotFoundError:
            return "not stored"
        except Exception as exc:  # zipfile.BadZipFile, a cut .npy header, ...
            return f"unreadable ({exc.__class__.__name__}: {exc})"
        return None

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.relative_to(self.root).with_suffix("").as_posix() for p in self.root.rglob("*" + SUFFIX)
                      if not p.name.startswith("."))

    def lengths(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        return {key: self._length(key) for key in (self.keys() if keys is None else keys)}

    def _length(self, key: str) -> int:
        """The first dimension of the length array, read from its ``.npy`` header only."""
        path = self.path(key)
        try:
            with zipfile.ZipFile(path) as zf, zf.open(self.length_array + ".npy") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, _ = read_header(fh)
        except Exception as exc:
            exc.add_note(f"while reading the length of the prepared clip {path}; delete it to prepare it again")
            raise
        return int(shape[0]) if shape else 1
