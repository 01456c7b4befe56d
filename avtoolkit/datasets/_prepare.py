"""What every corpus cache shares: converting clips on a process pool, writing reports whole.

Private to the corpus folders (``lrw/cache.py``, ``grid/cache.py``); the registry skips it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from avtoolkit.atomic import atomic_write


def _init_worker() -> None:
    import cv2

    # OpenCV threads per process would oversubscribe the cores the pool already uses.
    cv2.setNumThreads(1)


def convert_all(convert: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int | None, desc: str,
                progress: bool, chunksize: int = 4) -> Iterator[Any]:
    """Yields ``convert(task)`` for every task, in completion order, on up to ``workers`` processes.

    Args:
        convert: a module-level function (it is pickled to the workers).
        tasks: its arguments, one per clip.
        workers: processes (default: every core; never more than there are tasks).
        desc: the progress bar's label (``"prepare LRW"``).
        progress: show a tqdm bar.
        chunksize: tasks sent to a worker at a time.

    Examples:
        >>> sorted(convert_all(abs, [-2, 1], workers=1, desc="demo", progress=False))
        [1, 2]
    """
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks) or 1))
    bar = tqdm(total=len(tasks), desc=desc, unit="clip", disable=not progress)
    pool = None
    try:
        if workers == 1:
            results = map(convert, tasks)
        else:
            # spawn, not fork: a child forked from a process whose OpenCV or torch thread pools
            # have run can deadlock (seen as a hang in cv2.setNumThreads inside the test suite).
            # Each worker pays one import of the caller's module, negligible beside a corpus.
            pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
            results = pool.imap_unordered(convert, tasks, chunksize=chunksize)
        for result in results:
            yield result
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()


def write_report(path: Path, header: str, failed: Sequence[tuple[str, str]]) -> None:
    """Writes ``header`` and one ``item<TAB>reason`` line per failure to ``path``, whole or not at all.

    Two ``avtoolkit prepare`` runs into one cache must not interleave their reports, so the
    text goes to a temporary file beside ``path`` and replaces it in one step.
    """
    lines = [header] + [f"{item}\t{reason}" for item, reason in sorted(failed)]
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
