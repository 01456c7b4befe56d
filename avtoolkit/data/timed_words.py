"""Transcript files of the LRS corpora (``Text:``, ``Conf:``, a word-timing table) and cutting at word timings.

LRS2 and LRS3 (Afouras, Chung, Zisserman; BBC and TED) ship one ``.txt`` beside every
``.mp4``. Both corpora use the same shape::

    Text:  WHEN YOU'RE COOKING CHIPS AT HOME
    Conf:  4
    Ref:   https://www.youtube.com/watch?v=...        (LRS3 only)

    WORD START END ASDSCORE                           (LRS2 pretrain/, every LRS3 file)
    WHEN 0.10 0.22 4.6
    ...

Times are seconds from the clip's first frame. LRS3 marks non-speech with ``{LG}``/``{NS}``
tokens, dropped here. :func:`segment_words` cuts a long utterance into pieces of at most N
seconds at word boundaries, as auto_avsr cuts the pretrain sets (16 or 24 s). Two corpus
folders of :mod:`avtoolkit.datasets` read these files, so the parser lives below both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from avtoolkit.errors import AvtoolkitError

#: LRS3's non-speech tokens ({LG} laughter, {NS} noise), not words.
NON_SPEECH = re.compile(r"\{[A-Za-z]+\}")
_NUMBER = r"-?\d+(?:\.\d*)?"


class TranscriptError(AvtoolkitError, ValueError):
    """A transcript file is malformed; the message reads ``file:line: reason``."""


@dataclass(frozen=True)
class TimedWord:
    """One row of the word-timing table: the word and its span in seconds from the clip's start."""

    word: str
    start: float
    end: float


@dataclass
class TranscriptFile:
    """A parsed ``.txt``: the sentence, the annotators' confidence, LRS3's source, the timed words."""

    text: str
    conf: str | None = None
    ref: str | None = None
    words: list[TimedWord] = field(default_factory=list)


def parse_transcript(text: str, source: str = "<transcript>") -> TranscriptFile:
    """Parses one LRS2/LRS3 transcript file's text.

    Raises:
        TranscriptError: no ``Text:`` line, an empty sentence, or a timing row that is not
            ``WORD START END [SCORE]`` with ``START <= END`` (the message names ``source`` and
            the line).

    Examples:
        >>> t = parse_transcript("Text:  HELLO {LG} WORLD\\nConf:  3\\n\\nWORD START END ASDSCORE\\n"
        ...                      "HELLO 0.10 0.40 2.1\\nWORLD 0.50 0.90 3.0\\n")
        >>> t.text, t.conf, [(w.word, w.start, w.end) for w in t.words]
        ('HELLO WORLD', '3', [('HELLO', 0.1, 0.4), ('WORLD', 0.5, 0.9)])
        >>> parse_transcript("Conf: 4\\n", "a.txt")
        Traceback (most recent call last):
        ...
        avtoolkit.data.timed_words.TranscriptError: a.txt:1: 'Conf:' before the 'Text:' line
    """
    out: TranscriptFile | None = None
    in_table = False
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        head, _, rest = stripped.partition(":")
        if not in_table and head in ("Text", "Conf", "Ref") and _:
            value = rest.strip()
            if head == "Text":
                sentence = " ".join(NON_SPEECH.sub(" ", value).split())
                if not sentence:
                    raise TranscriptError(f"{source}:{n}: the 'Text:' line holds no words")
                out = TranscriptFile(text=sentence)
            elif out is None:
                raise TranscriptError(f"{source}:{n}: '{head}:' before the 'Text:' line")
            elif head == "Conf":
                out.conf = value
            else:
                out.ref = value
            continue
        if stripped.split()[:3] == ["WORD", "START", "END"]:
            in_table = True
            continue
        if not in_table:
            raise TranscriptError(f"{source}:{n}: expected 'Text:', 'Conf:', 'Ref:' or the 'WORD START END' "
                                  f"table header, got {stripped!r}")
        parts = stripped.split()
        if len(parts) not in (3, 4) or not all(re.fullmatch(_NUMBER, p) for p in parts[1:]):
            raise TranscriptError(f"{source}:{n}: expected 'WORD START END [ASDSCORE]' with times in seconds, "
                                  f"got {stripped!r}")
        start, end = float(parts[1]), float(parts[2])
        if end < start or start < 0:
            raise TranscriptError(f"{source}:{n}: word {parts[0]!r} spans {start:g}-{end:g} s (end before start, "
                                  "or a negative time)")
        if out is None:
            raise TranscriptError(f"{source}:{n}: a timing row before the 'Text:' line")
        if not NON_SPEECH.fullmatch(parts[0]):
            out.words.append(TimedWord(parts[0], start, end))
    if out is None:
        raise TranscriptError(f"{source}:1: no 'Text:' line (an LRS transcript starts with 'Text:  THE SENTENCE')")
    return out


def read_transcript(path: str | Path) -> TranscriptFile:
    """:func:`parse_transcript` of a file (UTF-8; an undecodable file is a :class:`TranscriptError`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TranscriptError(f"{path}:1: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_transcript(text, str(path))


@dataclass(frozen=True)
class Segment:
    """A piece of an utterance: its words and its window ``[start, end)`` in seconds."""

    words: tuple[TimedWord, ...]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


def segment_words(words: list[TimedWord], max_seconds: float) -> list[Segment]:
    """Cuts timed words into consecutive segments, each spanning at most ``max_seconds``.

    Greedy, in spoken order: a segment grows word by word while its first word's start and
    its last word's end stay within ``max_seconds``; so every cut falls between two words, no
    word is split or lost, and the segments do not overlap.

    Raises:
        ValueError: a single word is longer than ``max_seconds`` (it cannot fit any segment).

    Examples:
        >>> ws = [TimedWord(w, s, s + 0.5) for w, s in [("a", 0.0), ("b", 0.6), ("c", 1.2), ("d", 1.8)]]
        >>> [(s.text, s.start, s.end) for s in segment_words(ws, 1.2)]
        [('a b', 0.0, 1.1), ('c d', 1.2, 2.3)]
    """
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    segments: list[Segment] = []
    current: list[TimedWord] = []
    for word in words:
        if word.end - word.start > max_seconds:
            raise ValueError(f"word {word.word!r} at {word.start:g}-{word.end:g} s is longer than the "
                             f"{max_seconds:g} s segment limit")
        if current and word.end - current[0].start > max_seconds:
            segments.append(Segment(tuple(current)))
            current = []
        current.append(word)
    if current:
        segments.append(Segment(tuple(current)))
    return segments
