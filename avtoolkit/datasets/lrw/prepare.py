"""``build_roi_cache``: decode LRW's mp4s once into cached grayscale 96x96 mouth ROIs.

Lightning's ``prepare_data`` hook of the ``lrw`` dataset and ``avtoolkit prepare`` call it.

Each clip becomes ``<cache_dir>/WORD/SPLIT/WORD_00001.npz`` holding ``rois`` (uint8
``[T, 96, 96]``, zlib-compressed) and ``duration`` (seconds, NaN when the ``.txt`` has none).
The cache is an :class:`~avtoolkit.store.NpzClipStore`: existing clips are kept, so an
interrupted run resumes where it stopped, and each clip is written whole or not at all. Clips that
cannot be decoded are listed with the reason in ``<cache_dir>/prepare_report.tsv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from avtoolkit.data.media import MediaError
from avtoolkit.datasets._prepare import prepare_clips, prepare_shards
from avtoolkit.datasets.lrw.layout import SPLITS, LRWClip, find_words, list_clips, read_duration, select_words
from avtoolkit.store import REPORT_NAME, NpzClipStore, PrepareReport


def clip_key(clip: LRWClip) -> str:
    """``WORD/SPLIT/WORD_00001``: the clip's key in the cache's :class:`~avtoolkit.store.NpzClipStore`."""
    return f"{clip.word}/{clip.split}/{clip.id}"


def shard_folder(cache_dir: str | Path) -> Path:
    """``<cache_dir>/shards``: the split folders of ``--format shards`` (``shards/train/index.json``)."""
    return Path(cache_dir) / "shards"


def cache_path(cache_dir: str | Path, clip: LRWClip) -> Path:
    """Where ``clip``'s mouth ROIs are cached."""
    return NpzClipStore(cache_dir).path(clip_key(clip))


def _landmarks_for(landmarks_dir: Path | None, clip: LRWClip) -> np.ndarray | None:
    if landmarks_dir is None:
        return None
    from avtoolkit.roi.landmark_files import load_landmarks

    path = landmarks_dir / clip.word / clip.split / f"{clip.id}.npy"
    if not path.is_file() and path.with_suffix(".pkl").is_file():
        path = path.with_suffix(".pkl")  # mpc001's released LRW landmarks
    if not path.is_file():
        raise FileNotFoundError(f"no landmark file {path} (or .pkl) for {clip.video}")
    return load_landmarks(path)


def convert_clip(args: tuple[LRWClip, dict, Path | None]) -> tuple[dict[str, np.ndarray], dict]:
    """One clip's ``rois`` and ``duration`` arrays (raises for a bad clip; the preparation reports it)."""
    from avtoolkit.data.media import read_video
    from avtoolkit.roi import MouthCropper

    clip, cropper_args, landmarks_dir = args
    frames, _ = read_video(clip.video, color="gray")
    rois = MouthCropper(**cropper_args).crop(frames, _landmarks_for(landmarks_dir, clip), source=clip.video)
    duration = read_duration(clip.metadata)
    return {"rois": rois, "duration": np.float32(np.nan if duration is None else duration)}, {}


def build_roi_cache(root: str | Path, cache_dir: str | Path, *, words: int | None = None,
                    words_list: Sequence[str] | None = None, splits: Sequence[str] = SPLITS,
                    method: str = "fixed", landmarks_dir: str | Path | None = None,
                    workers: int | None = None, progress: bool = True, sheets: int = 3,
                    store_format: str = "npz", part: tuple[int, int] = (1, 1), shard_size: int = 1000,
                    quality: int = 95, index_only: bool = False) -> PrepareReport:
    """Converts the LRW clips of the selected words into cached mouth ROIs.

    Args:
        root: the ``lipread_mp4`` folder.
        cache_dir: where the ROIs go.
        words: the first N words in sorted order (default: all).
        words_list: a named subset of words instead.
        splits: which splits to convert.
        method: :class:`~avtoolkit.roi.MouthCropper` method: ``"fixed"`` (LRW's mouth
            box of its face-centred frames), ``"face"`` (OpenCV face detector) or
            ``"landmarks"`` (aligned to the mean face; landmarks from ``landmarks_dir`` or,
            without it, detected by the ``landmarks`` extra's face models).
        landmarks_dir: root of 68-point landmark files mirroring the LRW tree (``.npy``, or
            mpc001's ``.pkl``) for ``method="landmarks"``.
        workers: processes (default: every core).
        progress: show a tqdm progress bar.
        sheets: contact sheets of this many newly prepared clips go to ``<cache_dir>/sheets``.
        store_format: ``npz`` (one file per clip) or ``shards`` (``<cache_dir>/shards/<split>/``
            tar shards with an ``index.json``; see :func:`~avtoolkit.datasets._prepare.prepare_shards`).
        part, shard_size, quality, index_only: ``shards`` only: prepare part ``I`` of ``N``,
            samples per shard, JPEG quality of the ROIs, or only write the index of finished parts.

    Returns:
        A :class:`~avtoolkit.store.PrepareReport`; failed clips are also written to ``prepare_report.tsv``.

    Raises:
        LRWNotFoundError: ``root`` is not an LRW tree (the message says how to get LRW).
    """
    vocabulary = select_words(find_words(root), words, words_list)
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    cropper_args = {"size": (96, 96), "method": method}
    lm_dir = Path(landmarks_dir) if landmarks_dir is not None else None
    report = PrepareReport(report_path=cache_dir / REPORT_NAME)
    if store_format == "shards":
        by_split = {split: [(clip_key(c), str(c.video), (c, cropper_args, lm_dir), {"text": c.word, "split": split})
                            for c in list_clips(root, split, vocabulary)] for split in splits}
        return prepare_shards(shard_folder(cache_dir), by_split, convert_clip, header="video\treason", part=part,
                              shard_size=shard_size, quality=quality, index_only=index_only, workers=workers,
                              desc="prepare LRW", progress=progress, chunksize=8)
    if store_format != "npz":
        raise ValueError(f"store format {store_format!r}: expected 'npz' or 'shards'")
    clips = [(clip_key(clip), str(clip.video), (clip, cropper_args, lm_dir))
             for split in splits for clip in list_clips(root, split, vocabulary)]
    done = prepare_clips(NpzClipStore(cache_dir), clips, convert_clip, report, header="video\treason",
                         workers=workers, desc="prepare LRW", progress=progress, chunksize=8)
    if done and sheets > 0:  # a few crops as pictures beside the report, to check them by eye
        _write_sheets([clip for clip, _, _ in done[:sheets]], cache_dir / "sheets", cropper_args, lm_dir)
    return report


def _write_sheets(clips: list[LRWClip], out_dir: Path, cropper_args: dict, lm_dir: Path | None) -> None:
    from avtoolkit.roi.crop import MouthCropper
    from avtoolkit.roi.sheet import write_sheets

    landmarks = []
    for clip in clips:
        try:
            landmarks.append(_landmarks_for(lm_dir, clip))
        except (OSError, MediaError):
            landmarks.append(None)  # the run already reported this clip as failed
    write_sheets([c.video for c in clips], out_dir, MouthCropper(**cropper_args), landmarks)


