"""Subtitles for a recording of any length: cut into utterances, transcribe each, time them.

:func:`transcribe_recording` works with any :class:`~avtoolkit.inference.transcriber.Transcriber`
(audio-only, video-only or audio-visual; CTC or hybrid, with the decoder its recipe names):

1. the audio track (16 kHz) is read whole (an hour is 115 MB); the frames (resampled to
   25 fps, :func:`stream_at_25fps`) are streamed, never held: a first pass tracks the face
   and keeps only its landmarks (1 KB a frame) when the model reads video (or when there is
   no audio to cut by), a second pass cuts each utterance's frames as the stream reaches
   it, so at most one utterance's frames (plus the next one's overlap) are in memory;
2. utterances come from voice activity when there is an audio track with speech in it,
   else from face tracks; either is split into overlapping windows when longer than
   ``max_s`` (:mod:`avtoolkit.inference.segments`);
3. each utterance is transcribed from the inputs it has: the waveform slice and, where a
   face is tracked over at least half of it, the mouth crops cut as the checkpoint's recipe
   says (``data.crop_method``);
4. the overlapping windows' transcripts are joined so a word in an overlap appears once
   (:mod:`avtoolkit.inference.overlap`).
"""

from __future__ import annotations

import math
import os
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from avtoolkit.data.media import MediaError
from avtoolkit.inference.overlap import trim_window
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


def stream_at_25fps(frames: Iterable[np.ndarray], fps: float) -> Iterator[np.ndarray]:
    """:func:`resample_to_25fps` of a stream: the same frames, holding at most three.

    The count (``round(n * 25 / fps)``) is known only at the stream's end; it is at most one
    frame less than the frames the nearest-timestamp rule gives, so two are held back until then.

    Examples:
        >>> [int(f) for f in stream_at_25fps(iter(range(6)), 30.0)]
        [0, 1, 2, 4, 5]
    """
    if abs(fps - FPS) < 1e-3:
        yield from frames
        return
    held: deque[np.ndarray] = deque()
    k = n = 0
    last = None
    for i, frame in enumerate(frames):
        n, last = i + 1, frame
        while math.floor(k * fps / FPS + 0.5) <= i:  # the same arithmetic as resample_to_25fps
            held.append(frame)
            k += 1
        while len(held) > 2:
            yield held.popleft()
    if n == 0:
        return
    count, given = max(1, int(round(n * FPS / fps))), k - len(held)
    while given < count:  # the held frames, then the last one repeated (upsampling's clipped tail)
        yield held.popleft() if held else last
        given += 1


@dataclass
class VideoTrack:
    """A file's video, to be streamed at 25 fps gray (:meth:`frames`) rather than held."""

    path: Path
    count: int  # frames at 25 fps

    def frames(self) -> Iterator[np.ndarray]:
        from avtoolkit.data.media import stream_video

        frames, fps = stream_video(self.path, color="gray", threads=0)
        return stream_at_25fps(frames, fps)


@dataclass
class Recording:
    """A recording's inputs: 16 kHz audio (or None), its video (streamed, or None), landmarks."""

    audio: np.ndarray | None
    video: VideoTrack | None
    landmarks: np.ndarray | None

    @property
    def frame_count(self) -> int:
        return self.video.count if self.video is not None else 0

    @property
    def duration(self) -> float:
        lengths = [len(self.audio) / SAMPLE_RATE] if self.audio is not None else []
        lengths += [self.frame_count / FPS] if self.video is not None else []
        return max(lengths)

    def face_found(self) -> np.ndarray:
        """Per-frame bool: landmarks found (all True when faces were not tracked)."""
        if self.landmarks is None:
            return np.ones(self.frame_count, bool)
        return ~np.isnan(self.landmarks).any(axis=(1, 2))


def read_recording(path: str | os.PathLike[str], *, need_video: bool, need_audio: bool) -> Recording:
    """Reads the audio and tracks the face in one pass over the frames (the frames are not kept).

    A file with neither usable input is a MediaError.
    """
    from avtoolkit.data.media import read_audio, stream_video

    audio = video = landmarks = None
    if need_audio:
        try:
            audio = read_audio(path, sample_rate=SAMPLE_RATE)
        except MediaError as exc:
            if "no audio" not in str(exc):
                raise
    if need_video or audio is None:
        try:
            source, fps = stream_video(path, color="gray", threads=0)
        except MediaError:
            if audio is None:
                raise
        else:
            from avtoolkit.errors import MissingExtraError
            from avtoolkit.roi.detector import detect_landmarks

            counted = _Counted(stream_at_25fps(source, fps))
            try:
                landmarks = detect_landmarks(counted)
            except MissingExtraError:
                if audio is None:
                    raise  # silent video is cut by face tracks: nothing else to cut by
                import logging

                # With audio the voice cuts the utterances; the crop method finds the mouth itself.
                logging.getLogger(__name__).warning("%s: no face tracking without the landmarks extra "
                                                    "(pip install 'avtoolkit[landmarks]'); every segment "
                                                    "is given its video", path)
                for _ in counted:  # the frame count is still needed
                    pass
            if counted.n:
                video = VideoTrack(Path(path), counted.n)
            elif audio is None:
                raise MediaError(path, "no video frames could be decoded (corrupt, truncated or audio-only)")
    if audio is None and video is None:
        raise MediaError(path, "neither an audio track nor video frames could be read")
    return Recording(audio, video, landmarks)


class _Counted:
    """An iterator that counts what passes through it."""

    def __init__(self, items: Iterator[np.ndarray]) -> None:
        self.items, self.n = items, 0

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> np.ndarray:
        item = next(self.items)
        self.n += 1
        return item


class _FrameCutter:
    """Cuts ``[a, b)`` frame ranges, in order of ``a``, from one pass over a frame stream.

    Frames before the latest ``a`` are dropped; those of the current range are held, so the
    memory is one range's frames (a window and the overlap the next one shares with it).
    """

    def __init__(self, frames: Iterator[np.ndarray]) -> None:
        self.frames, self.next_index = frames, 0
        self.held: deque[tuple[int, np.ndarray]] = deque()

    def cut(self, a: int, b: int) -> np.ndarray | None:
        while self.held and self.held[0][0] < a:
            self.held.popleft()
        while self.next_index < b:
            frame = next(self.frames, None)
            if frame is None:
                break
            if self.next_index >= a:
                self.held.append((self.next_index, frame))
            self.next_index += 1
        got = [f for i, f in self.held if i < b]
        return np.stack(got) if got else None

    def close(self) -> None:
        close = getattr(self.frames, "close", None)
        if close is not None:
            close()


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
        overlap_s: overlap of those windows; each overlap is split at its middle, a word in
            it kept by one window (:func:`~avtoolkit.inference.overlap.trim_window`).
        progress: draw a progress bar on stderr.
        modalities: inputs to use (default: all the model reads).
        on_cue: called with each cue once final (a window's, when the next window is transcribed).

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

    cutter = _FrameCutter(rec.video.frames()) if "video" in use and rec.video is not None else None
    raw: list[Cue] = []  # as transcribed; a window's cue is final once the next one is known
    cues: list[Cue] = []

    def finish(i: int) -> None:
        cue = trim_window(raw[i], raw[i - 1] if i else None, raw[i + 1] if i + 1 < len(raw) else None)
        cues.append(cue)
        if on_cue is not None:
            on_cue(cue)

    bar = tqdm(total=len(utterances), desc="transcribing", unit="segment", file=sys.stderr, disable=not progress)
    try:
        for span, cut_by in utterances:
            item = _inputs(asr, rec, span, use, path, cutter)
            bar.update(1)
            if not item:
                continue
            result = asr.transcribe(**item)
            raw.append(Cue(round(span.start, 3), round(span.end, 3), result.transcript, result.modalities, cut_by))
            if len(raw) > 1:
                finish(len(raw) - 2)
            bar.set_postfix_str(result.transcript[:40])
        if raw:
            finish(len(raw) - 1)
    finally:
        bar.close()
        if cutter is not None:
            cutter.close()
    return cues


def _inputs(asr: Any, rec: Recording, span: Span, use: list[str], path, cutter: _FrameCutter | None) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if "audio" in use and rec.audio is not None:
        a, b = int(span.start * SAMPLE_RATE), int(span.end * SAMPLE_RATE)
        if b - a > max(asr.log_mel.win_length, asr.audio.min_samples):
            item["audio"] = rec.audio[a:b]
    if cutter is not None:
        a, b = int(round(span.start * FPS)), max(int(round(span.start * FPS)) + 1, int(round(span.end * FPS)))
        found = rec.face_found()[a:b]
        # A span the face is missing from most of (a cutaway, the speaker off screen) is
        # transcribed from audio alone, or skipped when there is none.
        if len(found) and found.mean() >= 0.5:
            frames = cutter.cut(a, b)
            marks = rec.landmarks[a:b] if rec.landmarks is not None else None
            try:
                if frames is None:
                    raise MediaError(path, f"no frames at {span.start:.2f} s")
                item["video"] = _mouth_crops(asr, frames, marks, f"{path} at {span.start:.2f} s")
            except MediaError:
                if "audio" not in item:
                    raise
    return item


def _mouth_crops(asr: Any, frames: np.ndarray, landmarks: np.ndarray | None, source: str) -> np.ndarray:
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
