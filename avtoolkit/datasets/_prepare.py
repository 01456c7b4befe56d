"""What every corpus's preparation shares: converting clips on a process pool into a clip store.

A corpus gives :func:`prepare_clips` its clips as ``(key, report name, task)`` and a
module-level ``convert(task) -> (arrays, meta)``; the clips the store holds already are
skipped, the others converted on every core and written through the store, and the failures
(a clip's ``convert`` raising) listed in the :class:`~avtoolkit.store.PrepareReport`.

Private to the corpus folders (``lrw/prepare.py``, ``grid/prepare.py``); the registry skips it.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from typing import Any, Callable, Iterator, Sequence

from avtoolkit.errors import UsageError
from avtoolkit.store import ClipStore, PrepareReport

log = logging.getLogger(__name__)


def _init_worker() -> None:
    import cv2

    # OpenCV threads per process would oversubscribe the cores the pool already uses.
    cv2.setNumThreads(1)


def convert_all(convert: Callable[[Any], Any], tasks: Sequence[Any], *, workers: int | None, desc: str,
                progress: bool, chunksize: int = 4, ordered: bool = False) -> Iterator[Any]:
    """Yields ``convert(task)`` for every task, in completion order (``ordered``: task order), on up to ``workers`` processes.

    Args:
        convert: a module-level function (it is pickled to the workers).
        tasks: its arguments, one per clip.
        workers: processes (default: every core; never more than there are tasks).
        desc: the progress bar's label (``"prepare LRW"``).
        progress: show a tqdm bar.
        chunksize: tasks sent to a worker at a time.
        ordered: yield in task order (a sharded store's shards then hold the same clips on every run).

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
            results = (pool.imap if ordered else pool.imap_unordered)(convert, tasks, chunksize=chunksize)
        for result in results:
            yield result
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()


class Rejected(Exception):
    """A clip ``convert`` refuses, reported with its message alone (no exception type)."""


def failure_reason(exc: BaseException) -> str:
    """One report line's reason: ``Type: message`` (or a :class:`Rejected` message), on one line.

    Examples:
        >>> failure_reason(ValueError("bad\\tframe\\n3")), failure_reason(Rejected("too short"))
        ('ValueError: bad frame 3', 'too short')
    """
    text = str(exc) if isinstance(exc, Rejected) else f"{type(exc).__name__}: {exc}"
    return text.replace("\t", " ").replace("\n", " ")


def _convert_one(task: tuple[Callable[[Any], tuple[dict, dict]], ClipStore, str, str, Any]) -> tuple[str, str | None, Any]:
    """Converts and stores one clip; returns ``(report name, None or the reason it failed, encoded sample)``.

    A store with one writer (``single_writer``: tar shards) gets the clip back encoded, to append
    in the parent process; any other is written here, in the worker.
    """
    convert, store, key, name, payload = task
    try:
        arrays, meta = convert(payload)
        if getattr(store, "single_writer", False):
            return name, None, store.encode(arrays, meta)
        store.write(key, arrays, meta)
    except Exception as exc:  # one bad clip must not stop the other 500k; it is reported
        return name, failure_reason(exc), None
    return name, None, None


def prepare_clips(store: ClipStore, clips: Sequence[tuple[str, str, Any]],
                  convert: Callable[[Any], tuple[dict, dict]], report: PrepareReport, *, header: str,
                  workers: int | None, desc: str, progress: bool, chunksize: int = 4) -> list[Any]:
    """Prepares the clips ``store`` lacks; counts them in ``report`` and writes its TSV.

    Args:
        store: where the clips go.
        clips: ``(store key, name in the report, convert's argument)`` per clip.
        convert: a module-level function (it is pickled to the workers) giving a clip's
            ``(arrays, meta)``; raising reports the clip as failed.
        report: filled in (``prepared``, ``skipped``, ``failed``) and written to its path.
        header: the report's first line (``"clip\treason"``).
        workers, desc, progress, chunksize: see :func:`convert_all`.

    Returns:
        The arguments of the clips converted in this call (for contact sheets).
    """
    tasks = []
    for key, name, payload in clips:
        damage = store.damage(key) if store.contains(key) else "not stored"
        if damage is None:
            report.skipped += 1
        else:
            if damage != "not stored":
                log.warning("%s: the cached clip is damaged (%s); preparing it again", store.where(key), damage)
            tasks.append((convert, store, key, name, payload))
    root = getattr(store, "root", None)
    if tasks and root is not None and not os.access(root, os.W_OK):
        # A shared read-only cache is usable as it is: what it lacks is left out, not a traceback.
        log.warning("%s is read-only: %d clip(s) it lacks or holds damaged are left out (prepare them where "
                    "the cache can be written, or set another cache folder)", root, len(tasks))
        report.failed += [(name, f"not prepared: the cache {root} is read-only") for _, _, _, name, _ in tasks]
        tasks = []
    single = getattr(store, "single_writer", False)
    keys = {name: key for _, _, key, name, _ in tasks}
    try:
        for name, reason, encoded in convert_all(_convert_one, tasks, workers=workers, desc=desc,
                                                 progress=progress, chunksize=chunksize, ordered=single):
            if reason is None and encoded is not None:
                store.write_encoded(keys[name], encoded)
            if reason is None:
                report.prepared += 1
            else:
                report.failed.append((name, reason))
    finally:
        if single:
            store.close()  # the last shard is finished even when a bad input stops the run
    if root is None or os.access(root, os.W_OK):
        report.write(header)
    return [t[4] for t in tasks]


def _convert_with_meta(args: tuple[Callable[[Any], tuple[dict, dict]], Any, dict]) -> tuple[dict, dict]:
    """``convert(payload)`` with the corpus's metadata (transcript, label) added to what it returns."""
    convert, payload, meta = args
    arrays, own = convert(payload)
    return arrays, {**meta, **own}


def prepare_shards(folder: str | os.PathLike[str], clips_by_split: dict[str, Sequence[tuple[str, str, Any, dict]]],
                   convert: Callable[[Any], tuple[dict, dict]], *, header: str, part: tuple[int, int] = (1, 1),
                   shard_size: int = 1000, quality: int = 95, index_only: bool = False, workers: int | None = None,
                   desc: str, progress: bool, chunksize: int = 4,
                   layout_problems: Sequence[tuple[str, str]] = ()) -> PrepareReport:
    """Prepares every split into ``<folder>/<split>/`` tar shards (:class:`~avtoolkit.store.ShardClipStore`).

    Args:
        folder: the shard root; a split's shards and ``index.json`` go to ``<folder>/<split>``.
        clips_by_split: split -> ``(store key, report name, convert's argument, metadata)`` per clip.
        convert: as for :func:`prepare_clips`.
        header: the report's first line.
        part: ``(I, N)``: prepare only part ``I`` of ``N`` of every split's clips (sorted by key),
            into shards named for the part; ``(1, 1)`` prepares everything and writes the index.
        shard_size, quality: see :class:`~avtoolkit.store.ShardClipStore`.
        index_only: prepare nothing; write each split's ``index.json`` from the parts' shards.
        layout_problems: clips the layout reader left out, copied into the report (part 1 only).

    Returns:
        The run's :class:`~avtoolkit.store.PrepareReport`, written to
        ``<folder>/prepare_report.tsv`` (``prepare_report.partIIIofNNN.tsv`` for a part).

    Raises:
        UsageError: ``index_only`` while a part has not finished.
    """
    from pathlib import Path

    from avtoolkit.store import REPORT_NAME, ShardClipStore

    folder = Path(folder)
    if index_only:
        stores = [ShardClipStore(folder / split) for split in clips_by_split]
        missing = {s.location: s.missing_parts() for s in stores if s.missing_parts()}
        if missing:  # checked for every split before any index is written
            raise UsageError("; ".join(f"{where}: part(s) {', '.join(m)} have not finished" for where, m in missing.items())
                             + "; run `avtoolkit prepare ... --format shards --part I/N` for them first")
        for store in stores:
            index = store.write_index()
            log.info("%s: %d samples in %d shards", store.location, index["samples"], len(index["shards"]))
        return PrepareReport(skipped=sum(len(s.keys()) for s in stores))
    i, n = part
    name = REPORT_NAME if part == (1, 1) else REPORT_NAME.replace(".tsv", f".part{i:03d}of{n:03d}.tsv")
    total = PrepareReport(report_path=folder / name, failed=list(layout_problems) if i == 1 else [])
    for split, clips in clips_by_split.items():
        store = ShardClipStore(folder / split, shard_size=shard_size, quality=quality, part=part)
        store.root.mkdir(parents=True, exist_ok=True)
        mine = part_of(sorted(clips, key=lambda c: c[0]), part)
        report = PrepareReport(report_path=store.root / name)
        prepare_clips(store, [(key, rname, (convert, payload, meta)) for key, rname, payload, meta in mine],
                      _convert_with_meta, report, header=header, workers=workers, desc=f"{desc} {split}",
                      progress=progress, chunksize=chunksize)
        total.prepared += report.prepared
        total.skipped += report.skipped
        total.failed += report.failed
        if part == (1, 1):
            store.write_index()
        else:
            store.write_part_done(len(report.failed))
    total.write(header)
    return total


def part_of(items: Sequence[Any], part: tuple[int, int]) -> Sequence[Any]:
    """Part ``I`` of ``N`` of ``items`` (:func:`avtoolkit.store.shards.part_slice`)."""
    from avtoolkit.store.shards import part_slice

    return part_slice(items, part)
