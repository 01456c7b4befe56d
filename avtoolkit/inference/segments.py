"""Cutting a long recording into utterances: voice activity, face-track breaks, fixed windows.

A model trained on sentences (GRID's 3 s, LRS3's up to ~6 s) sees a whole talk as one
input it was never trained on; it is cut first. Where there is audio, speech is found by
its energy (:func:`voice_activity`); for silent video, by where a face is tracked
(:func:`face_tracks`). Either kind of span longer than ``max_s`` is split into overlapping
windows (:func:`split_long`).

Why Silero VAD (``silero-vad``, MIT): its model is inside the pip wheel (no download), it
needs only torch (our pin), and on GRID sentences it finds the speech within 0.1 s of the
corpus's word alignments where a short-time-energy detector ran 0.5 s past a sentence into a
post-utterance noise as loud as speech (docs/preprocessing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """A stretch of the recording, in seconds."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def voice_activity(wave: np.ndarray, sample_rate: int = 16000, *, min_pause_s: float = 0.3,
                   min_speech_s: float = 0.25, pad_s: float = 0.05) -> list[Span]:
    """Speech spans of a mono waveform, found by Silero VAD (the ``silero-vad`` package).

    Its model ships inside the wheel (nothing is downloaded) and runs on 32 ms windows at
    about 100x real time on one core. Pauses shorter than ``min_pause_s`` stay inside an
    utterance, spans shorter than ``min_speech_s`` are dropped, each span is widened by ``pad_s``.

    Args:
        wave: float ``[S]`` samples.
        sample_rate: 16000 or 8000 (the rates the model takes).

    Returns:
        Spans in time order, not overlapping.

    Examples:
        >>> voice_activity(np.zeros(16000, np.float32))  # a second of silence
        []
    """
    import torch

    model = _silero()
    wave = torch.as_tensor(np.ascontiguousarray(wave, dtype=np.float32))
    from silero_vad import get_speech_timestamps

    model.reset_states()
    found = get_speech_timestamps(wave, model, sampling_rate=sample_rate, min_speech_duration_ms=int(min_speech_s * 1000),
                                  min_silence_duration_ms=int(min_pause_s * 1000), speech_pad_ms=int(pad_s * 1000))
    return [Span(round(f["start"] / sample_rate, 3), round(f["end"] / sample_rate, 3)) for f in found]


_SILERO: list = []


def _silero():
    """The VAD model, loaded once per process (TorchScript, from the installed wheel)."""
    if not _SILERO:
        from silero_vad import load_silero_vad

        _SILERO.append(load_silero_vad(onnx=False))
    return _SILERO[0]


def face_tracks(found: np.ndarray, fps: float = 25.0, *, min_pause_s: float = 0.2,
                min_track_s: float = 0.4) -> list[Span]:
    """Spans where a face is tracked, from a per-frame ``found`` mask (True = landmarks).

    A break of at least ``min_pause_s`` (a cut, the speaker leaving the frame) ends a span;
    shorter dropouts are bridged, as the crop interpolates them.

    Examples:
        >>> found = np.array([1] * 50 + [0] * 25 + [1] * 50, bool)
        >>> [(s.start, s.end) for s in face_tracks(found)]
        [(0.0, 2.0), (3.0, 5.0)]
    """
    spans = _bridge(_runs(np.asarray(found, bool), 1.0 / fps), min_pause_s)
    return [s for s in spans if s.duration >= min_track_s]


def split_long(spans: list[Span], max_s: float = 10.0, overlap_s: float = 1.0) -> list[Span]:
    """Spans longer than ``max_s`` as windows of ``max_s`` overlapping by ``overlap_s``.

    Examples:
        >>> [(s.start, s.end) for s in split_long([Span(0.0, 25.0)], 10.0, 1.0)]
        [(0.0, 10.0), (9.0, 19.0), (18.0, 25.0)]
    """
    if not 0 <= overlap_s < max_s:
        raise ValueError(f"need 0 <= overlap_s < max_s, got {overlap_s} and {max_s}")
    out: list[Span] = []
    for span in spans:
        start = span.start
        while span.end - start > max_s:
            out.append(Span(start, start + max_s))
            start += max_s - overlap_s
        out.append(Span(start, span.end))
    return out


def _runs(mask: np.ndarray, step_s: float) -> list[Span]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [Span(round(float(a) * step_s, 6), round(float(b) * step_s, 6)) for a, b in zip(starts, ends)]


def _bridge(spans: list[Span], min_pause_s: float) -> list[Span]:
    merged: list[Span] = []
    for span in spans:
        if merged and span.start - merged[-1].end < min_pause_s:
            merged[-1] = Span(merged[-1].start, span.end)
        else:
            merged.append(span)
    return merged
