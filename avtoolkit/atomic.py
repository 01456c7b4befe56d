"""Whole-or-nothing file writes: the one temp-file-then-rename helper of the toolkit.

Checkpoints, prepared clips, reports, landmark files, crop sheets, results and exported models
are all written through :func:`atomic_write`: the bytes go to a hidden temporary file in the
target's own folder (so the rename never crosses a filesystem), are flushed and fsynced, and
``os.replace`` moves the file into place in one step. A reader, a second process preparing the
same cache, or a run killed half way through sees either the old file or the new one; on any
failure, ``KeyboardInterrupt`` included, the temporary file is removed.

Examples:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "sub" / "report.txt"
    >>> with atomic_write(target, "w") as fh:
    ...     _ = fh.write("ok\\n")
    >>> target.read_text()
    'ok\\n'
    >>> try:
    ...     with atomic_write(target, "w") as fh:
    ...         _ = fh.write("half")
    ...         raise RuntimeError("killed")
    ... except RuntimeError:
    ...     pass
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('ok\\n', ['report.txt'])
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["TEMP_SUFFIX", "atomic_write", "stale_temporaries", "temp_prefix"]

#: ending of every temporary file :func:`atomic_write` makes (``.<name>.<random>.tmp``).
TEMP_SUFFIX = ".tmp"


def temp_prefix(path: str | os.PathLike[str]) -> str:
    """The hidden prefix of the temporary files written for ``path``.

    Examples:
        >>> temp_prefix("runs/x/last.ckpt")
        '.last.ckpt.'
    """
    return f".{Path(path).name}."


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *,
                 encoding: str | None = None) -> Iterator[IO[Any]]:
    """Opens a temporary file beside ``path``; on a clean exit it replaces ``path`` in one step.

    Args:
        path: the file to (re)write; missing parent folders are made.
        mode: ``"wb"`` (default) or ``"w"`` (text, UTF-8 unless ``encoding`` says otherwise).
        encoding: text encoding for ``mode="w"``.

    Raises:
        ValueError: ``mode`` is not a write mode.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        text = mode == "w"
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if text else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Temporary files :func:`atomic_write` left in ``folder`` (a process killed mid-write).

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / ".last.ckpt.abc123.tmp").write_bytes(b"")
        >>> _ = (d / "last.ckpt").write_bytes(b"x")
        >>> [p.name for p in stale_temporaries(d)]
        ['.last.ckpt.abc123.tmp']
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))
