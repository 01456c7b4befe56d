"""An exclusive lock on a run directory, held by the one process that writes into it.

Two ``avtoolkit run --resume D`` at once would interleave checkpoints, ``metrics.csv`` rows
and ``results.json``; the second is refused instead. The lock is ``fcntl.flock`` on
``D/.lock``: the kernel drops it when its process dies, so a lock file left by a killed run
is stale by construction and the next run takes it over without asking.

A ``flock`` belongs to the open file, and ``fork()`` shares open files: the loader workers a run
forks would keep its lock alive after the run itself was killed, so ``--resume`` right after a
``kill -9`` was refused until they exited. The descriptor is therefore closed in every forked
child (``os.register_at_fork``); the parent's lock is unaffected, since a ``flock`` lasts until
the last descriptor of its open file is closed.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from avtoolkit.errors import RunDirectoryError

#: the lock file's name inside a run directory (not part of the run's contents).
LOCK_NAME = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; runs there are not locked
    fcntl = None  # type: ignore[assignment]

#: descriptors of the locks this process holds, closed in each child it forks.
_HELD: set[int] = set()


def _drop_locks_in_child() -> None:
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:  # pragma: no cover - already closed
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_locks_in_child)


class RunLock:
    """``with RunLock(run_dir):`` holds the run directory's lock; the file is removed on exit.

    Raises:
        RunDirectoryError: another live process holds the lock (its process id is named).

    Examples:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with RunLock(d):
        ...     (d / LOCK_NAME).is_file()
        True
        >>> (d / LOCK_NAME).exists()
        False
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock, or raises :class:`RunDirectoryError` naming the process holding it."""
        if fcntl is None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise RunDirectoryError(
                    f"{self.run_dir} is in use by another avtoolkit run (process {holder}; lock file "
                    f"{self.path}); wait for it to finish or stop it, then run again") from None
            # The holder unlinks the file on release: if that happened between our open and
            # our flock, we hold a lock on a deleted file. Start again on the current one.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _HELD.add(fd)

    def release(self) -> None:
        """Removes the lock file and drops the lock (a no-op when not held)."""
        if self._fd is None:
            return
        # Unlink while still holding the lock, so nobody locks a file that is about to vanish.
        self.path.unlink(missing_ok=True)
        _HELD.discard(self._fd)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
