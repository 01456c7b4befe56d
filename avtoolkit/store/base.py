"""``ClipStore``: the interface every prepared-clip backend implements."""

from __future__ import annotations

import abc
import os
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np


class Clip(NamedTuple):
    """One stored clip: its named arrays and its metadata (JSON-serialisable values)."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


class ClipStore(abc.ABC):
    """Prepared clips by key: written whole or not at all, read by key, listed with lengths.

    A key is a relative, ``/``-separated name (``s1/bbaf2n``, ``ABOUT/train/ABOUT_00001``).
    A clip is a few named arrays (``rois``, ``audio``, ...) and a small metadata mapping. Its
    length is the first dimension (frames) of the store's ``length_array``.
    """

    #: the array whose first dimension is a clip's length in frames.
    length_array: str = "rois"

    @abc.abstractmethod
    def write(self, key: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> None:
        """Stores ``arrays`` and ``meta`` under ``key`` atomically: a reader sees the old clip or the new one."""

    @abc.abstractmethod
    def read(self, key: str, names: Sequence[str] | None = None) -> Clip:
        """The clip under ``key``: all its arrays, or only ``names`` (the others are not decoded).

        Raises:
            KeyError: no clip is stored under ``key``.
            OSError, ValueError: the stored clip is unreadable; the error notes where it is
                and that deleting it makes the next preparation write it again.
        """

    @abc.abstractmethod
    def contains(self, key: str) -> bool:
        """Whether a clip is stored under ``key`` (cheap: no decoding)."""

    @abc.abstractmethod
    def keys(self) -> list[str]:
        """Every stored key, sorted."""

    @abc.abstractmethod
    def lengths(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        """Key -> length in frames of ``keys`` (default: all), without decoding the arrays."""

    @abc.abstractmethod
    def where(self, key: str) -> str:
        """Where ``key`` is stored, for messages (a file path, a shard and member name)."""

    def damage(self, key: str) -> str | None:
        """Why the stored ``key`` cannot be whole (cheap: no decoding), or ``None`` when it looks whole.

        ``prepare`` asks before it skips a clip as "already cached", so a truncated or empty file
        left by a killed run is prepared again instead of failing the run that reads it. This
        default only asks :meth:`contains`.
        """
        return None if self.contains(key) else "not stored"

    def usable(self, key: str) -> bool:
        """Whether a training run may read ``key``: stored, and, where ``prepare`` cannot have just
        prepared a damaged file again (a read-only store), looking whole (:meth:`damage`)."""
        if not self.contains(key):
            return False
        root = getattr(self, "root", None)
        return root is None or os.access(root, os.W_OK) or self.damage(key) is None

    def is_valid(self, key: str) -> bool:
        """Whether ``key`` is stored and its arrays can be read (decodes them)."""
        try:
            self.read(key)
        except Exception:
            return False
        return True
