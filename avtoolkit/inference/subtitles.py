"""Timed transcripts as SRT, WebVTT and JSON (the formats subtitle tools and players read)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass(frozen=True)
class Cue:
    """One transcribed utterance.

    Attributes:
        start: seconds from the start of the recording.
        end: seconds.
        text: the transcript.
        modalities: the inputs the model read for it (``["audio", "video"]``, ...).
        cut_by: what found the utterance: ``"voice"`` (voice activity), ``"face"`` (a face
            track of silent video) or ``"window"`` (a fixed window of a longer span).
    """

    start: float
    end: float
    text: str
    modalities: list[str]
    cut_by: str


def _clock(seconds: float, separator: str) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text.

    Examples:
        >>> print(to_srt([Cue(1.5, 3.25, "bin blue", ["audio"], "voice")]), end="")
        1
        00:00:01,500 --> 00:00:03,250
        bin blue
    """
    blocks = [f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text or '...'}\n"
              for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text (the modalities as each cue's identifier line).

    Examples:
        >>> print(to_vtt([Cue(0.0, 1.0, "set white", ["video"], "face")]), end="")
        WEBVTT
        <BLANKLINE>
        1 video
        00:00:00.000 --> 00:00:01.000
        set white
    """
    blocks = [f"{i} {'+'.join(c.modalities)}\n{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text or '...'}\n"
              for i, c in enumerate(cues, 1)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(cues: Sequence[Cue], **info: object) -> str:
    """``{"segments": [...], **info}`` as indented JSON."""
    return json.dumps({**info, "segments": [asdict(c) for c in cues]}, indent=1) + "\n"
