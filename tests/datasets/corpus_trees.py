"""Small trees in the LRS2, LRS3 and VoxCeleb2 layouts, built at test time from real GRID s1 clips.

The clips are symlinks to ``../shared/data/grid_s1/s1/<id>.mp4`` (real faces and voices, never
copied into the repository); the transcript files are written in each corpus's own format, with
word timings from GRID's own alignments (25 kHz samples -> seconds).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_GRID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "grid_s1"
#: GRID s1 clips the trees are made of, in order of use.
CLIP_IDS = ("bbaf2n", "bbaf4p", "bbal6n", "bbal7s", "bbal8p", "bbal9a", "bbas1s", "bbas3a", "bbaszn", "bbaz4n")
#: settings that keep preparation fast: a fixed box (no face search), small crops, one process.
FAST = {"crop_method": "fixed", "roi_size": 48, "video_size": 32, "prepare_workers": 1, "workers": 0,
        "batch_size": 2, "spec_augment": False}


def grid_s1() -> Path:
    """The shared GRID s1 folder, or a skip naming where it was looked for."""
    if not (SHARED_GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {SHARED_GRID} (see docs/grid.md)")
    return SHARED_GRID


def timed_words(clip_id: str) -> list[tuple[str, float, float]]:
    """``(WORD, start s, end s)`` of a GRID clip's spoken words, from its own ``.align`` file."""
    rows = []
    for line in (grid_s1() / "alignments" / "s1" / f"{clip_id}.align").read_text().splitlines():
        start, end, word = line.split()
        if word not in ("sil", "sp"):
            rows.append((word.upper(), int(start) / 25000, int(end) / 25000))
    return rows


def lrs_text(clip_id: str, table: bool, ref: str | None = None) -> str:
    """An LRS2/LRS3 ``.txt`` for a GRID clip: ``Text:``, ``Conf:``, LRS3's ``Ref:``, the timing table."""
    words = timed_words(clip_id)
    text = f"Text:  {' '.join(w for w, _, _ in words)}\nConf:  4\n"
    if ref is not None:
        text += f"Ref:   {ref}\n"
    if table:
        text += "\nWORD START END ASDSCORE\n" + "".join(f"{w} {s:.2f} {e:.2f} 3.1\n" for w, s, e in words)
    return text


def place(clip_id: str, video: Path) -> Path:
    """``video`` as a link to a GRID clip."""
    video.parent.mkdir(parents=True, exist_ok=True)
    video.symlink_to(grid_s1() / "s1" / f"{clip_id}.mp4")
    return video


def broken(video: Path) -> Path:
    """An ``.mp4`` that is not a video (a truncated download)."""
    video.parent.mkdir(parents=True, exist_ok=True)
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    return video
