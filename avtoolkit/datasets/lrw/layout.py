"""The LRW layout: ``lipread_mp4/WORD/{train,val,test}/WORD_00001.{mp4,txt}``.

Lip Reading in the Wild (Chung & Zisserman, 2016): 500 words, ~1000 training clips each,
29 frames at 25 fps of BBC broadcasts, face-centred 256x256 frames. The ``.txt`` beside
each clip has a ``Duration: 0.35 seconds`` line: how long the word lasts, centred in the clip.
"""

from __future__ import annotations

from avtoolkit.errors import DatasetNotFoundError

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

SPLITS = ("train", "val", "test")
FPS = 25.0

LRW_HELP = (
    "LRW (Lip Reading in the Wild) is distributed by the BBC and the University of Oxford under a "
    "licence agreement: request it at https://www.robots.ox.ac.uk/~vgg/data/lip_reading/ , unpack "
    "lipread_mp4, and point the recipe at it with data.root=/path/to/lipread_mp4 (a command-line "
    "override or the recipe's data.root). Expected layout: "
    "lipread_mp4/WORD/{train,val,test}/WORD_00001.mp4 with WORD_00001.txt beside each clip."
)


class LRWNotFoundError(DatasetNotFoundError):
    """``data.root`` is not an LRW tree; the message says where LRW comes from and how to set it."""


@dataclass(frozen=True)
class LRWClip:
    """One clip: its word, split, label index and video path."""

    word: str
    split: str
    label: int
    video: Path

    @property
    def id(self) -> str:
        """The file stem, e.g. ``ABOUT_00001``."""
        return self.video.stem

    @property
    def metadata(self) -> Path:
        return self.video.with_suffix(".txt")


def find_words(root: str | Path) -> list[str]:
    """Sorted word folders under ``root`` (folders that hold a split folder).

    Raises:
        LRWNotFoundError: ``root`` is missing or holds no word folders.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise LRWNotFoundError(f"LRW not found: {root} is not a directory. {LRW_HELP}")
    words = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and any((p / s).is_dir() for s in SPLITS))
    if not words:
        raise LRWNotFoundError(f"LRW not found: {root} has no WORD/{{train,val,test}} folders. {LRW_HELP}")
    return words


def select_words(available: Sequence[str], words: int | None = None,
                 words_list: Sequence[str] | None = None) -> list[str]:
    """The vocabulary: ``words_list`` (sorted), else the first ``words`` in sorted order, else all.

    Raises:
        ValueError: a listed word is not in the tree, or ``words`` is out of range.

    Examples:
        >>> select_words(["B", "A", "C"], words=2)
        ['A', 'B']
        >>> select_words(["B", "A", "C"], words_list=["C", "A"])
        ['A', 'C']
    """
    available = sorted(available)
    if words_list:
        missing = sorted(set(words_list) - set(available))
        if missing:
            raise ValueError(f"data.words_list names words not in the LRW tree: {missing[:10]}")
        return sorted(set(words_list))
    if words is not None:
        if not 1 <= words <= len(available):
            raise ValueError(f"data.words must be between 1 and {len(available)}, got {words}")
        return available[:words]
    return available


def list_clips(root: str | Path, split: str, vocabulary: Sequence[str]) -> list[LRWClip]:
    """Every ``.mp4`` of ``split`` for the words of ``vocabulary`` (label = index in it)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root).expanduser()
    clips = []
    for label, word in enumerate(vocabulary):
        for video in sorted((root / word / split).glob("*.mp4")):
            clips.append(LRWClip(word, split, label, video))
    return clips


_DURATION = re.compile(r"^\s*Duration:\s*([0-9.]+)", re.MULTILINE)


def read_duration(metadata: str | Path) -> float | None:
    """The word's duration in seconds from an LRW ``.txt`` (``None`` when absent).

    Raises:
        ValueError: the file has a malformed ``Duration:`` line (names the file and line).
    """
    path = Path(metadata)
    if not path.is_file():
        return None
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if line.strip().startswith("Duration:"):
            match = _DURATION.match(line)
            if not match:
                raise ValueError(f"{path}:{number}: cannot read a duration from {line.strip()!r}")
            return float(match.group(1))
    return None


def word_boundary(duration: float | None, num_frames: int, fps: float = FPS) -> np.ndarray:
    """Per-frame 0/1 indicator of the frames inside the word, centred in the clip.

    As in mpc001's LRW preprocessing: half the duration on each side of the middle frame,
    plus one frame of margin each side. Unknown duration -> all ones (no information).

    Examples:
        >>> word_boundary(0.2, 29).astype(int).tolist()  # 0.1 s = 2 frames each side + 1 margin
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    """
    out = np.zeros(num_frames, np.float32)
    if duration is None or not np.isfinite(duration):
        out[:] = 1.0
        return out
    half = int(duration / 2.0 * fps)
    mid = (num_frames - 1) // 2
    out[max(0, mid - half - 1):min(num_frames, mid + half + 2)] = 1.0
    return out
