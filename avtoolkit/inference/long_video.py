"""Subtitles for a recording of any length: cut into utterances, transcribe each, time them.

:func:`transcribe_recording` works with any :class:`~avtoolkit.inference.transcriber.Transcriber`
(audio-only, video-only or audio-visual; CTC or hybrid, with the decoder its recipe names):

1. the audio track (16 kHz) and the frames (resampled to 25 fps, :func:`resample_to_25fps`)
   are read once; faces are tracked over the whole video when the model reads video (or
   when there is no audio to cut by);
2. utterances come from voice activity when there is an audio track with speech in it,
   else from face tracks; either is split into overlapping windows when longer than
   ``max_s`` (:mod:`avtoolkit.inference.segments`);
3. each utterance is transcribed from the inputs it has: the waveform slice and, where a
   face is tracked over at least half of it, the mouth crops cut as the checkpoint's recipe
   says (``data.crop_method``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from avtoolkit.data.media import MediaError
from avtoolkit.inference.segments import Span, face_tracks, split_long, voice_activity
from avtoolkit.inference.subtitles import Cue

FPS = 25.0
SAMPLE_RATE = 16000


def resample_to_25fps(frames: np.ndarray, fps: float) -> np.ndarray:
    """Frames at 25 fps by nearest timestamp: frame ``k`` shows the source frame at ``k / 25`` s.

    Frames are dropped (above 25 fps) or repeated (below), as ffmpeg's ``fps`` filter does;
    a model trained on 25 fps clips then sees motion at its training speed.

    Examples:
        >>> resample_to_25fps(np.arange(6), 30.0).tolist()  # 0.2 s at 30 fps -> 5 frames
        [0, 1, 2, 4, 5]
    """
    if abs(fps - FPS) < 1e-3 or len(frames) == 0:
        return frames
    count = max(1, int(round(len(frames) * FPS / fps)))
    # round half up (np.round rounds half to even, which would repeat frames unevenly)
    index = np.minimum(np.floor(np.arange(count) * fps / FPS + 0.5).astype(int), len(frames) - 1)
    return frames[index]


@dataclass
class Recording:
    """A recording's inputs, read once: 16 kHz audio (or None), 25 fps gray frames (or None), landmarks."""

    audio: np.ndarray | None
    frames: np.ndarray | None
    landmarks: np.ndarray | None

    @property
    def duration(self) -> float:
        lengths = [len(self.audio) / SAMPLE_RATE] if self.audio is not None else []
        lengths += [len(self.frames) / FPS] if self.frames is not None else []
        return max(lengths)

    def face_found(self) -> np.ndarray:
        """Per-frame bool: landmarks found (all True when faces were not tracked)."""
        if self.landmarks is None:
            return np.ones(len(self.frames) if self.frames is not None else 0, bool)
        return ~np.isnan(self.landmarks).any(axis=(1, 2))


def read_recording(path: str | os.PathLike[str], *, need_video: bool, need_audio: bool) -> Recording:
    """Reads what is needed of ``path``; a file with neither usable input is a MediaError."""
    from avtoolkit.data.media import read_audio, read_video

    audio = frames = landmarks = None
    if need_audio:
        try:
            audio = read_audio(path, sample_rate=SAMPLE_RATE)
        except MediaError as exc:
            if "no audio" not in str(exc):
                raise
    if need_video or audio is None:
        try:
            frames, fps = read_video(path, color="gray", threads=0)
        except MediaError:
            if audio is None:
                raise
        else:
            from avtoolkit.errors import MissingExtraError
            from avtoolkit.roi.detector import detect_landmarks

            frames = resample_to_25fps(frames, fps)
            try:
                landmarks = detect_landmarks(frames)
            except MissingExtraError:
                if audio is None:
                    raise  # silent video is cut by face tracks: nothing else to cut by
                import logging

                # With audio the voice cuts the utterances; the crop method finds the mouth itself.
                logging.getLogger(__name__).warning("%s: no face tracking without the landmarks extra "
                                                    "(pip install 'avtoolkit[landmarks]'); every segment "
                                                    "is given its video", path)
    if audio is None and frames is None:
        raise MediaError(path, "neither an audio track nor video frames could be read")
    return Recording(audio, frames, landmarks)


def find_utterances(rec: Recording, *, max_s: float = 10.0, overlap_s: float = 1.0) -> list[tuple[Span, str]]:
    """``(span, cut_by)`` for each utterance: voice activity if there is speech, else face tracks."""
    spans: list[Span] = []
    cut_by = "voice"
    if rec.audio is not None:
        spans = voice_activity(rec.audio, SAMPLE_RATE)
    if not spans and rec.landmarks is not None:
        spans, cut_by = face_tracks(rec.face_found(), FPS), "face"
    out = []
    for span in spans:
        pieces = split_long([span], max_s, overlap_s)
        out += [(p, cut_by if len(pieces) == 1 else "window") for p in pieces]
    return out


def transcribe_recording(asr: Any, path: str | os.PathLike[str] | Recording, *, max_s: float = 10.0, overlap_s: float = 1.0,
                         progress: bool = True, modalities: list[str] | None = None,
                         on_cue: Callable[[Cue], None] | None = None) -> list[Cue]:
    """Transcribes a whole recording, one :class:`Cue` per utterance.

    Args:
        asr: a :class:`~avtoolkit.inference.transcriber.Transcriber`.
        path: a video or audio file of any length, or a :class:`Recording` already read
            (:func:`read_recording`) to transcribe it with several models.
        max_s: longest utterance passed to the model; longer spans become overlapping windows.
        overlap_s: overlap of those windows.
        progress: draw a progress bar on stderr.
        modalities: inputs to use (default: all the model reads).
        on_cue: called with each cue as it is made.

    Returns:
        Cues in time order (empty when no speech and no face was found).

    Raises:
        MediaError: the file cannot be read.
        UsageError: ``modalities`` names one the model does not read.
    """
    from avtoolkit.errors import UsageError

    use = sorted(modalities or asr.modalities)
    bad = [m for m in use if m not in asr.modalities]
    if bad:
        raise UsageError(f"--modalities: this model reads {asr.modalities}, not {bad}")
    if isinstance(path, Recording):
        rec, path = path, "<recording>"
    else:
        rec = read_recording(path, need_video="video" in use, need_audio="audio" in use)
    utterances = find_utterances(rec, max_s=max_s, overlap_s=overlap_s)
    from tqdm import tqdm

    cues = []
    bar = tqdm(total=len(utterances), desc="transcribing", unit="segment", file=sys.stderr, disable=not progress)
    for span, cut_by in utterances:
        item = _inputs(asr, rec, span, use, path)
        bar.update(1)
        if not item:
            continue
        result = asr.transcribe(**item)
        cue = Cue(round(span.start, 3), round(span.end, 3), result.transcript, result.modalities, cut_by)
        cues.append(cue)
        if on_cue is not None:
            on_cue(cue)
        bar.set_postfix_str(result.transcript[:40])
    bar.close()
    return cues


def _inputs(asr: Any, rec: Recording, span: Span, use: list[str], path) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if "audio" in use and rec.audio is not None:
        a, b = int(span.start * SAMPLE_RATE), int(span.end * SAMPLE_RATE)
        if b - a > max(asr.log_mel.win_length, asr.audio.min_samples):
            item["audio"] = rec.audio[a:b]
    if "video" in use and rec.frames is not None:
        a, b = int(round(span.start * FPS)), max(int(round(span.start * FPS)) + 1, int(round(span.end * FPS)))
        found = rec.face_found()[a:b]
        # A span the face is missing from most of (a cutaway, the speaker off screen) is
        # transcribed from audio alone, or skipped when there is none.
        if len(found) and found.mean() >= 0.5:
            try:
                item["video"] = _mouth_crops(asr, rec.frames[a:b], rec.landmarks[a:b], f"{path} at {span.start:.2f} s")
            except MediaError:
                if "audio" not in item:
                    raise
    return item


def _mouth_crops(asr: Any, frames: np.ndarray, landmarks: np.ndarray, source: str) -> np.ndarray:
    from avtoolkit.roi import MouthCropper

    cropper = MouthCropper(size=asr.video_size, method=asr.crop_method)
    given = landmarks if asr.crop_method in ("landmarks", "auto_avsr") else None
    return cropper.crop(frames, given, source=source)


def write_subtitles(cues: list[Cue], path: str | os.PathLike[str], fmt: str, **info: object) -> Path:
    """Writes ``cues`` as ``fmt`` (``srt``, ``vtt`` or ``json``) to ``path`` in one step."""
    from avtoolkit.atomic import atomic_write
    from avtoolkit.inference.subtitles import to_json, to_srt, to_vtt

    text = {"srt": to_srt, "vtt": to_vtt}[fmt](cues) if fmt != "json" else to_json(cues, **info)
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return Path(path)
