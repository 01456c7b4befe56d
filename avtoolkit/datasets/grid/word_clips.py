"""Word mode: every aligned GRID word as an LRW-style clip with a ``word_boundary`` mask.

A word spanning frames ``[start, end)`` (alignment samples / 1000) is cut out with a fixed
``window`` of video frames centred on its middle, shifted to stay inside the sentence's video,
so every cut has the same length like LRW's 29-frame clips. ``word_boundary`` is 1 on the
frames that overlap the word and 0 on the context frames around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from avtoolkit.data.grid_grammar import VOCABULARY
from avtoolkit.datasets.grid.layout import AlignedWord, GridClip

_INDEX = {w: i for i, w in enumerate(VOCABULARY)}


@dataclass(frozen=True)
class WordCut:
    """One word of one clip: ``clip.words[index]`` with its class label."""

    clip: GridClip
    index: int

    @property
    def word(self) -> AlignedWord:
        return self.clip.words[self.index]

    @property
    def label(self) -> int:
        return _INDEX[self.word.word]

    @property
    def key(self) -> str:
        """``s1/bbaf2n#3`` (the fourth spoken word)."""
        return f"{self.clip.key}#{self.index}"


def word_cuts(clips: Sequence[GridClip]) -> list[WordCut]:
    """Every spoken word of every clip (all GRID words are in the 51-word vocabulary).

    Raises:
        ValueError: a word outside GRID's vocabulary (a corrupt alignment).
    """
    out = []
    for clip in clips:
        for i, w in enumerate(clip.words):
            if w.word not in _INDEX:
                raise ValueError(f"{clip.key}: word {w.word!r} is not one of GRID's 51 words")
            out.append(WordCut(clip, i))
    return out


def word_window(word: AlignedWord, num_frames: int, window: int) -> tuple[int, np.ndarray]:
    """The first frame of the fixed window around a word, and its ``word_boundary`` mask.

    Args:
        word: the aligned word.
        num_frames: frames of the sentence's video.
        window: frames per cut (the whole video when shorter).

    Returns:
        ``(first, boundary)``: frames ``first .. first + len(boundary) - 1`` are the cut;
        ``boundary`` (float32) is 1 where a frame ``t`` overlaps the word (``t + 1 > start``
        and ``t < end`` in frames).

    Examples:
        >>> first, b = word_window(AlignedWord("bin", 23750, 29500), 75, 9)  # frames 23.75..29.5
        >>> first, b.astype(int).tolist()
        (22, [0, 1, 1, 1, 1, 1, 1, 1, 0])
    """
    window = min(window, num_frames)
    middle = (word.start_frame + word.end_frame) / 2
    first = int(np.floor(middle - window / 2 + 0.5))
    first = max(0, min(first, num_frames - window))
    t = np.arange(first, first + window)
    boundary = ((t + 1 > word.start_frame) & (t < word.end_frame)).astype(np.float32)
    return first, boundary
