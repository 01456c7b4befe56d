"""Writes the synthetic media: wav with the stdlib, mp4 (H.264 + optional AAC) with PyAV, LRW clips."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

VIDEO_FPS = 25


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono wav of float ``audio`` in [-1, 1]."""
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def write_mp4(
    path: Path,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
    crf: int = 26,
) -> None:
    """H.264 mp4 of RGB ``frames`` ``[T, H, W, 3]`` at 25 fps, with an AAC track if ``audio``.

    ``crf`` sets the compression (higher is lossier; LRW's broadcast clips are visibly
    compressed). One encoder thread keeps the output bytes identical from run to run.
    """
    with av.open(str(path), "w", format="mp4") as container:
        vs = container.add_stream("libx264", rate=VIDEO_FPS)
        vs.width, vs.height = frames.shape[2], frames.shape[1]
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        vs.codec_context.thread_count = 1
        streams_audio = None
        if audio is not None:
            streams_audio = container.add_stream("aac", rate=sample_rate)
            streams_audio.layout = "mono"
            streams_audio.codec_context.thread_count = 1
        for i, img in enumerate(frames):
            # Convert to YUV here: FFmpeg's swscale picks SIMD paths by buffer alignment,
            # which made the same frames encode to different bytes in different processes.
            yuv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i  # explicit timestamps: PyAV's own numbering is not reset per file
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)
        if streams_audio is not None and audio is not None:
            frame = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None, :], format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = 0
            frame.time_base = Fraction(1, sample_rate)
            for packet in streams_audio.encode(frame):
                container.mux(packet)
            for packet in streams_audio.encode():
                container.mux(packet)


def write_lrw_clip(
    path: Path,
    frames: np.ndarray,
    duration: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
    crf: int = 26,
) -> Path:
    """One clip in LRW's layout: ``path`` (``.../WORD/SPLIT/WORD_00001.mp4``) and its ``.txt``.

    The ``.txt`` has LRW's ``Text``, ``Conf`` and ``Duration`` lines; ``duration`` is how long
    the word lasts (seconds), centred in the clip. The mp4 is :func:`write_mp4`'s.

    Returns:
        ``path``.

    Examples:
        >>> import tempfile
        >>> from avtoolkit.datasets.lrw.layout import read_duration
        >>> clip = Path(tempfile.mkdtemp()) / "ABOUT" / "train" / "ABOUT_00001.mp4"
        >>> _ = write_lrw_clip(clip, np.zeros((3, 64, 64, 3), np.uint8), 0.4)
        >>> read_duration(clip.with_suffix(".txt"))
        0.4
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(path, frames, audio, sample_rate, crf=crf)
    word = path.parent.parent.name
    path.with_suffix(".txt").write_text(
        f"Text:  {word}\nConf:  9\n\nDuration: {duration:.2f} seconds\n", encoding="utf-8"
    )
    return path
