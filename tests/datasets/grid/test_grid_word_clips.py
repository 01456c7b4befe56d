"""Word cuts: fixed windows around aligned words, with the word_boundary mask on the word's frames."""

from __future__ import annotations

import numpy as np

from avtoolkit.data.grid_grammar import VOCABULARY
from avtoolkit.datasets.grid.layout import find_clips
from avtoolkit.datasets.grid.word_clips import word_cuts, word_window

from .conftest import make_layout


def test_word_cuts_follow_alignment_times(tmp_path):
    make_layout(tmp_path, {"s1": ["bbaf2n"]})  # words of 5000 samples (5 frames) from sample 20000
    cuts = word_cuts(find_clips(tmp_path).clips)
    assert [VOCABULARY[c.label] for c in cuts] == "bin blue at f two now".split()
    for k, cut in enumerate(cuts):
        first, boundary = word_window(cut.word, 75, 15)
        assert len(boundary) == 15
        inside = first + np.flatnonzero(boundary)
        # frames 20+5k .. 24+5k hold word k (5 frames of 40 ms)
        assert inside.tolist() == list(range(20 + 5 * k, 25 + 5 * k))


def test_windows_stay_inside_the_video():
    from avtoolkit.datasets.grid.layout import AlignedWord

    first, boundary = word_window(AlignedWord("bin", 0, 3000), 75, 15)
    assert first == 0 and boundary[:3].tolist() == [1, 1, 1] and boundary[3:].sum() == 0
    first, boundary = word_window(AlignedWord("now", 72000, 75000), 74, 15)
    assert first + 15 == 74 and boundary[-2:].tolist() == [1, 1]
    first, boundary = word_window(AlignedWord("now", 0, 5000), 4, 15)
    assert (first, len(boundary)) == (0, 4)


def test_word_cuts_on_shared_clips_match_their_alignments(grid_root):
    clips = [c for c in find_clips(grid_root).clips if c.id in {"bbaf2n", "bbal6n", "bbaz4n"}]
    cuts = word_cuts(clips)
    assert len(cuts) == 18
    bin_cut = next(c for c in cuts if c.clip.id == "bbaf2n" and c.index == 0)
    first, boundary = word_window(bin_cut.word, 75, 15)
    # GRID's bbaf2n.align: "23750 29500 bin" -> frames 23 (from 23.75) to 29 (before 29.5)
    assert (first + np.flatnonzero(boundary)).tolist() == list(range(23, 30))
