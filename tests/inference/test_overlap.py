"""Overlapping windows of a long span: a word in an overlap is kept once, words elsewhere untouched."""

from __future__ import annotations

import pytest

from avtoolkit.inference.overlap import merge_windows
from avtoolkit.inference.segments import Span, split_long
from avtoolkit.inference.subtitles import Cue

# 40 GRID sentences read one after another at 0.07 s a character (GRID's pace: 3 s a sentence).
WORDS = " ".join(["bin blue at f two now", "set white with p two soon", "lay green by q nine again",
                  "place red in d seven please"] * 10).split()


def _timed_words(paces: tuple[float, ...]) -> list[tuple[float, float, str]]:
    """``(start, end, word)``: each sentence (six words) at the next pace of ``paces``, in s a character."""
    out, t = [], 0.0
    for n, w in enumerate(WORDS):
        step_s = paces[(n // 6) % len(paces)]
        out.append((t, t + len(w) * step_s, w))
        t += (len(w) + 1) * step_s
    return out


def _window_cues(windows: list[Span], words) -> list[Cue]:
    """What a perfect model says for each window: the words whose middle lies in it."""
    return [Cue(s.start, s.end, " ".join(w for a, b, w in words if s.start <= (a + b) / 2 < s.end), ["video"], "window")
            for s in windows]


@pytest.mark.parametrize("paces", [(0.07,), (0.05, 0.09), (0.09, 0.04, 0.07)], ids=["even", "fast-slow", "varied"])
def test_each_word_of_a_long_span_is_kept_once(paces) -> None:
    """A perfect model's windows joined give the words once, at an even pace or a changing one."""
    words = _timed_words(paces)
    windows = split_long([Span(0.0, words[-1][1])], 10.0, 1.0)
    cues = _window_cues(windows, words)
    joined_today = " ".join(c.text for c in cues).split()  # the windows as transcribed, unmerged
    assert len(joined_today) > len(WORDS)  # the overlaps' words, twice
    merged = merge_windows(cues)
    assert " ".join(c.text for c in merged).split() == WORDS
    assert [c.start for c in merged[1:]] == [c.end for c in merged[:-1]]  # cues meet at the overlaps' middles
    assert merged[0].start == 0.0 and merged[-1].end == round(cues[-1].end, 3)


def test_cues_that_do_not_overlap_pass_unchanged() -> None:
    cues = [Cue(0.0, 2.0, "bin blue", ["audio"], "voice"), Cue(2.5, 4.0, "at f", ["audio"], "voice"),
            Cue(5.0, 15.0, "set white with p", ["video"], "window"), Cue(16.0, 20.0, "two soon", ["video"], "window")]
    assert merge_windows(cues) == cues
