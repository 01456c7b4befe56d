"""``prepare_grid``: decode GRID clips once into cached mouth ROIs and 16 kHz audio.

Each clip becomes ``<cache_dir>/<speaker>/<id>.npz`` of an :class:`~avtoolkit.store.NpzClipStore`
with ``rois`` (uint8 ``[T, S, S]`` grayscale mouth crops from
:class:`~avtoolkit.roi.crop.MouthCropper`) and ``audio`` (int16 mono 16 kHz, from ``audio_25k``
when present, else the video's own track). Existing clips are kept (an interrupted run
resumes); each is written whole or not at all. Clips that fail (undecodable video or audio, no
face found, words aligned past the end of the video) are listed with the reason in
``<cache_dir>/prepare_report.tsv``, together with the clips the layout reader left out, and
counted in the returned :class:`~avtoolkit.store.PrepareReport`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from avtoolkit.datasets._prepare import Rejected, prepare_clips
from avtoolkit.datasets.grid.layout import GridClip
from avtoolkit.store import REPORT_NAME, NpzClipStore, PrepareReport

SAMPLE_RATE = 16000
#: words may end this many frames past the last decoded frame (alignment rounding, the four
#: 74-frame clips of s1) before the clip counts as cut short.
END_TOLERANCE_FRAMES = 1.0


def clip_store(folder: str | Path) -> NpzClipStore:
    """The store of one cache folder (:attr:`~avtoolkit.datasets.grid.datamodule.GridDataModule.folder`); keys are :attr:`GridClip.key`."""
    return NpzClipStore(folder)


def cache_path(folder: Path, clip: GridClip) -> Path:
    """Where ``clip`` is cached inside a cache folder."""
    return clip_store(folder).path(clip.key)


def convert_clip(args: tuple[GridClip, dict]) -> tuple[dict[str, np.ndarray], dict]:
    """One clip's ``rois`` and ``audio`` arrays (raises for a bad clip; the preparation reports it)."""
    from avtoolkit.data.media import read_audio, read_video
    from avtoolkit.roi.crop import MouthCropper

    clip, cropper_args = args
    frames, _ = read_video(clip.video, color="gray")
    if clip.end_frame > len(frames) + END_TOLERANCE_FRAMES:
        raise Rejected(f"alignment ends at frame {clip.end_frame:g} but the video has {len(frames)} frames")
    rois = MouthCropper(**cropper_args).crop(frames, source=clip.video)
    wave = read_audio(clip.audio, sample_rate=SAMPLE_RATE)
    audio = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
    return {"rois": rois, "audio": audio}, {}


def prepare_grid(clips: Sequence[GridClip], folder: str | Path, cropper_args: dict,
                 layout_problems: Sequence[tuple[str, str]] = (), workers: int | None = None,
                 progress: bool = True, sheets: int = 3) -> PrepareReport:
    """Converts the clips not cached yet in ``folder``; writes ``prepare_report.tsv`` there.

    Args:
        clips: clips from :func:`~avtoolkit.datasets.grid.layout.find_clips`.
        folder: the cache folder (:func:`~avtoolkit.store.cache_folder` with the cropper's key).
        cropper_args: :class:`~avtoolkit.roi.crop.MouthCropper` arguments.
        layout_problems: clips the layout reader left out, copied into the report file.
        workers: processes (default: every core).
        progress: show a tqdm bar.
        sheets: contact sheets of this many newly prepared clips go to ``<folder>/sheets``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = PrepareReport(report_path=folder / REPORT_NAME, failed=list(layout_problems))
    done = prepare_clips(clip_store(folder), [(c.key, c.key, (c, cropper_args)) for c in clips], convert_clip,
                         report, header="clip\treason", workers=workers, desc="prepare GRID", progress=progress)
    if done and sheets > 0:  # a few crops as pictures beside the report, to check them by eye
        from avtoolkit.roi.crop import MouthCropper
        from avtoolkit.roi.sheet import write_sheets

        write_sheets([clip.video for clip, _ in done[:sheets]], folder / "sheets", MouthCropper(**cropper_args))
    return report
