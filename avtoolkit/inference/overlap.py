"""Joining the transcripts of overlapping windows so a word in an overlap appears once.

A span longer than ``max_s`` (silent video cut by face tracks, or a long stretch of speech) is
transcribed as windows overlapping by ``overlap_s`` (:func:`~avtoolkit.inference.segments.split_long`),
so a word spoken in an overlap is in both windows' transcripts. Each overlap is split at its
middle: the earlier window keeps its words timed before the middle, the later window those at or
after it, and each cue's times become the kept stretch (cues no longer overlap).

Why word times from character positions: the rule has to work for every decoder a recipe names
(greedy CTC, beam search with a lexicon or an n-gram, attention or joint CTC/attention), and only
greedy CTC has a frame alignment to read times from. A word is timed at the middle of its
characters, with the window's characters spread evenly over the window:
``t = start + (end - start) * (centre character index) / (number of characters)``.
That estimate is off by up to a word where the speaking rate changes or a window starts or ends
in silence, so timing alone keeps a word near the overlap's middle twice (both windows place it
on their own side) or drops it. Hence a second step: the two windows' words in and near the
overlap are aligned as text (:class:`difflib.SequenceMatcher`); a word both windows say is one
word, timed at the mean of its two estimates, and kept by the window on whose side that falls.
A word only one window says (the windows heard it differently) is kept by its own time.
"""

from __future__ import annotations

from dataclasses import replace
from difflib import SequenceMatcher
from typing import Sequence

from avtoolkit.inference.subtitles import Cue


def word_times(text: str, start: float, end: float) -> list[tuple[float, str]]:
    """``(time, word)`` for each word, timed by its characters' position in the window.

    Examples:
        >>> word_times("ab cd", 0.0, 5.0)  # characters 0-1 and 3-4 of 5: centres 1.0 and 4.0
        [(1.0, 'ab'), (4.0, 'cd')]
    """
    out: list[tuple[float, str]] = []
    length, at = len(text), 0
    for word in text.split():
        at = text.index(word, at)
        centre = at + len(word) / 2
        out.append((start + (end - start) * centre / length, word))
        at += len(word)
    return out


def overlaps(a: Cue, b: Cue) -> bool:
    """True when ``b`` is the window after ``a`` of one long span (their times overlap)."""
    return a.cut_by == "window" and b.cut_by == "window" and b.start < a.end


def trim_window(cue: Cue, before: Cue | None, after: Cue | None) -> Cue:
    """``cue`` without the words its overlaps with ``before`` / ``after`` give to them.

    Args:
        cue: a cue as transcribed from its whole window.
        before, after: the cues of the windows before and after it (or None), untrimmed.

    Examples:
        >>> a = Cue(0.0, 10.0, "aa bb cc dd ee ff gg hh ii jj", ["video"], "window")  # a word a second
        >>> b = Cue(8.0, 18.0, "ii jj kk ll mm nn oo pp qq rr", ["video"], "window")
        >>> trim_window(a, None, b).text, trim_window(b, a, None).text  # overlap 8-10 s, split at 9 s
        ('aa bb cc dd ee ff gg hh ii', 'jj kk ll mm nn oo pp qq rr')
    """
    lo = (cue.start + before.end) / 2 if before is not None and overlaps(before, cue) else None
    hi = (after.start + cue.end) / 2 if after is not None and overlaps(cue, after) else None
    if lo is None and hi is None:
        return cue
    drop: set[int] = set()
    if lo is not None:
        drop |= split_overlap(before, cue)[1]
    if hi is not None:
        drop |= split_overlap(cue, after)[0]
    words = [w for i, (_, w) in enumerate(word_times(cue.text, cue.start, cue.end)) if i not in drop]
    return replace(cue, start=round(cue.start if lo is None else lo, 3), end=round(cue.end if hi is None else hi, 3),
                   text=" ".join(words))


def split_overlap(a: Cue, b: Cue) -> tuple[set[int], set[int]]:
    """Indices of ``a``'s words and of ``b``'s words that the overlap of ``a`` then ``b`` gives to the other.

    The overlap is split at its middle ``m``: ``a`` keeps its words timed before ``m``, ``b`` those
    at or after it; a word both say near the overlap counts once, at the mean of its two times.

    Examples:
        >>> a = Cue(0.0, 4.0, "bin blue at f two", ["video"], "window")
        >>> b = Cue(3.0, 7.0, "two now set white", ["video"], "window")
        >>> split_overlap(a, b)  # "two": 3.65 s in a, 3.35 s in b: one word at 3.5 s, kept by b
        ({4}, set())
    """
    m, margin = (b.start + a.end) / 2, (a.end - b.start) / 2
    wa, wb = word_times(a.text, a.start, a.end), word_times(b.text, b.start, b.end)
    ta, tb = [t for t, _ in wa], [t for t, _ in wb]
    ia = [i for i, t in enumerate(ta) if t >= b.start - margin]  # a's words in or near the overlap
    ib = [j for j, t in enumerate(tb) if t < a.end + margin]
    match = SequenceMatcher(None, [wa[i][1] for i in ia], [wb[j][1] for j in ib], autojunk=False)
    for block in match.get_matching_blocks():
        for k in range(block.size):
            i, j = ia[block.a + k], ib[block.b + k]
            ta[i] = tb[j] = (ta[i] + tb[j]) / 2
    return {i for i, t in enumerate(ta) if t >= m}, {j for j, t in enumerate(tb) if t < m}


def merge_windows(cues: Sequence[Cue]) -> list[Cue]:
    """Cues with each overlap between consecutive windows split at its middle (:func:`trim_window`).

    Cues that do not overlap (voice segments, face tracks) pass through unchanged.

    Examples:
        >>> a = Cue(0.0, 10.0, "aa bb cc dd ee ff gg hh ii jj", ["video"], "window")
        >>> b = Cue(8.0, 18.0, "ii jj kk ll mm nn oo pp qq rr", ["video"], "window")
        >>> [(c.start, c.end, c.text) for c in merge_windows([a, b])]
        [(0.0, 9.0, 'aa bb cc dd ee ff gg hh ii'), (9.0, 18.0, 'jj kk ll mm nn oo pp qq rr')]
    """
    return [trim_window(c, cues[i - 1] if i else None, cues[i + 1] if i + 1 < len(cues) else None)
            for i, c in enumerate(cues)]
