"""``prepare_grid``: decode GRID clips once into cached mouth ROIs and 16 kHz audio.

Each clip becomes ``<cache_dir>/<speaker>/<id>.npz`` with ``rois`` (uint8 ``[T, S, S]``
grayscale mouth crops from :class:`~avtoolkit.roi.crop.MouthCropper`) and ``audio`` (int16
mono 16 kHz, from ``audio_25k`` when present, else the video's own track). Existing files are
kept (an interrupted run resumes); files are written under a temporary name and renamed.
Clips that fail (undecodable video or audio, no face found, words aligned past the end of
the video) are listed with the reason in ``<cache_dir>/prepare_report.tsv``, together with the
clips the layout reader left out, and counted in the returned report.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from avtoolkit.datasets._prepare import convert_all, write_report
from avtoolkit.datasets.grid.layout import GridClip

REPORT_NAME = "prepare_report.tsv"
SAMPLE_RATE = 16000
#: words may end this many frames past the last decoded frame (alignment rounding, the four
#: 74-frame clips of s1) before the clip counts as cut short.
END_TOLERANCE_FRAMES = 1.0


@dataclass
class PrepareReport:
    """What :func:`prepare_grid` did; ``failed`` holds ``(clip key, reason)``."""

    prepared: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    report_path: Path | None = None

    def __str__(self) -> str:
        text = f"prepared {self.prepared} clips, {self.skipped} already cached, {len(self.failed)} failed"
        if self.failed:
            text += f" (listed with reasons in {self.report_path})"
        return text


def cache_folder(cache_dir: str | Path, cropper_key: str) -> Path:
    """The sub-folder for one cropper setting, so changing the crop never reuses old ROIs.

    Examples:
        >>> cache_folder("/c", "size=(96, 96), method='fixed'").parent.as_posix()
        '/c'
    """
    return Path(cache_dir) / ("rois_" + hashlib.sha1(cropper_key.encode()).hexdigest()[:10])


def cache_path(folder: Path, clip: GridClip) -> Path:
    """Where ``clip`` is cached inside a :func:`cache_folder`."""
    return folder / clip.speaker / f"{clip.id}.npz"


def convert_clip(clip: GridClip, target: Path, cropper_args: dict) -> str | None:
    """Prepares one clip; returns ``None`` or the reason it failed (never raises for a bad clip)."""
    from avtoolkit.data.media import read_audio, read_video
    from avtoolkit.roi.crop import MouthCropper

    try:
        frames, _ = read_video(clip.video, color="gray")
        if clip.end_frame > len(frames) + END_TOLERANCE_FRAMES:
            return (f"alignment ends at frame {clip.end_frame:g} but the video has {len(frames)} frames")
        rois = MouthCropper(**cropper_args).crop(frames, source=clip.video)
        wave = read_audio(clip.audio, sample_rate=SAMPLE_RATE)
        audio = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, rois=rois, audio=audio)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except Exception as exc:  # one bad clip must not stop the other 33999; it is reported
        return f"{type(exc).__name__}: {exc}".replace("\t", " ").replace("\n", " ")
    return None


def _convert(task: tuple[GridClip, Path, dict]) -> tuple[str, str | None]:
    clip, target, cropper_args = task
    return clip.key, convert_clip(clip, target, cropper_args)


def prepare_grid(clips: Sequence[GridClip], folder: str | Path, cropper_args: dict,
                 layout_problems: Sequence[tuple[str, str]] = (), workers: int | None = None,
                 progress: bool = True, sheets: int = 3) -> PrepareReport:
    """Converts the clips not cached yet in ``folder``; writes ``prepare_report.tsv`` there.

    Args:
        clips: clips from :func:`~avtoolkit.datasets.grid.layout.find_clips`.
        folder: a :func:`cache_folder`.
        cropper_args: :class:`~avtoolkit.roi.crop.MouthCropper` arguments.
        layout_problems: clips the layout reader left out, copied into the report file.
        workers: processes (default: every core).
        progress: show a tqdm bar.
        sheets: contact sheets of this many newly prepared clips go to ``<folder>/sheets``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = PrepareReport(report_path=folder / REPORT_NAME, failed=list(layout_problems))
    tasks = []
    for clip in clips:
        target = cache_path(folder, clip)
        if target.exists():
            report.skipped += 1
        else:
            tasks.append((clip, target, cropper_args))
    for key, reason in convert_all(_convert, tasks, workers=workers, desc="prepare GRID", progress=progress):
        if reason is None:
            report.prepared += 1
        else:
            report.failed.append((key, reason))
    write_report(report.report_path, "clip\treason", report.failed)
    if tasks and sheets > 0:  # a few crops as pictures beside the report, to check them by eye
        from avtoolkit.roi.crop import MouthCropper
        from avtoolkit.roi.sheet import write_sheets

        write_sheets([t[0].video for t in tasks[:sheets]], folder / "sheets", MouthCropper(**cropper_args))
    return report


def read_failed(folder: str | Path) -> dict[str, str]:
    """Clip key -> reason from a folder's ``prepare_report.tsv`` (empty if there is none)."""
    path = Path(folder) / REPORT_NAME
    if not path.is_file():
        return {}
    rows = [line.split("\t", 1) for line in path.read_text().splitlines()[1:] if "\t" in line]
    return {k: r for k, r in rows}
