"""Decoding video frames and audio samples from media files.

Video goes through OpenCV (``cv2.VideoCapture``, its bundled FFmpeg): on a 29-frame
256x256 h264 clip it decodes about six times faster than PyAV's frame-by-frame
conversion, and it reads GRID's MPEG-PS ``.mpg`` files as well as mp4 (h264, mpeg4).
Audio goes through PyAV, which reads the audio track of any container FFmpeg knows
(wav, flac, mp3, mp4, mpg) and resamples with libswresample.

Every failure to read a file raises :class:`MediaError` whose message names the file
and the reason, so a data-preparation report can list it as it is.
"""

from __future__ import annotations

from avtoolkit.errors import AvtoolkitError

import logging
import math
import os
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

#: frame rate reported when the container does not carry a usable one.
DEFAULT_FPS = 25.0

#: frame rate of mouth crops (the corpora's 25 fps; precomputed crops carry none).
VIDEO_FPS = 25.0
#: audio and video lengths may differ by this many seconds, or this share of the longer one.
LENGTH_TOLERANCE_S, LENGTH_TOLERANCE = 1.0, 0.2

log = logging.getLogger(__name__)


def warn_if_lengths_differ(audio_s: float, video_s: float, name: str) -> bool:
    """Logs a warning naming ``name`` when the audio and video of one utterance differ in length
    past the tolerance (the model pads the shorter one, so they are probably not one utterance).

    Returns:
        Whether it warned.
    """
    if abs(audio_s - video_s) <= max(LENGTH_TOLERANCE_S, LENGTH_TOLERANCE * max(audio_s, video_s)):
        return False
    log.warning("%s: the audio lasts %.2f s but the video %.2f s (at %g fps): the shorter one is padded; "
                "are they the same utterance?", name, audio_s, video_s, VIDEO_FPS)
    return True


class MediaError(AvtoolkitError, RuntimeError):
    """A media file could not be read; the message names the file and the reason.

    Examples:
        >>> str(MediaError("clip.mp4", "no video frames could be decoded"))
        'clip.mp4: no video frames could be decoded'
    """

    def __init__(self, path: str | os.PathLike[str], reason: str | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        # One argument: the caller wrote the whole message (it should name the file).
        super().__init__(self.path if reason is None else f"{self.path}: {reason}")

    def __reduce__(self):  # keeps the two-argument form picklable across worker processes
        return (type(self), (self.path, self.reason))


def _check_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "file does not exist")
    if not p.is_file():
        raise MediaError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise MediaError(p, "file is empty")
    return p


def read_video(
    path: str | os.PathLike[str],
    *,
    max_frames: int | None = None,
    color: Literal["rgb", "gray", "bgr"] = "rgb",
    threads: int = 1,
) -> tuple[np.ndarray, float]:
    """Decodes every frame of a video file.

    Args:
        path: a video file OpenCV's FFmpeg reads (mp4 with h264/mpeg4, MPEG-PS .mpg, avi...).
        max_frames: stop after this many frames (``None``: the whole clip).
        color: ``"rgb"`` (default) gives ``[T, H, W, 3]``; ``"gray"`` gives ``[T, H, W]``
            (BT.601 luma, what a grayscale mouth ROI is made of); ``"bgr"`` skips the
            channel swap for callers that convert themselves.
        threads: FFmpeg decoding threads; ``0`` lets FFmpeg choose. One is the default
            because data preparation runs one process per core, where more threads per
            clip only oversubscribe the CPU (the CPU time per clip is the same); use
            ``0`` to cut the latency of decoding one long high-resolution video.

    Returns:
        ``(frames, fps)``: uint8 frames and the frame rate the container reports
        (:data:`DEFAULT_FPS` when it reports none).

    Raises:
        MediaError: the file is missing, empty, not a video, or no frame decodes.

    Examples:
        >>> read_video("missing.mp4")
        Traceback (most recent call last):
        ...
        avtoolkit.data.media.MediaError: missing.mp4: file does not exist
    """
    import cv2

    p = _check_file(path)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    if color not in ("rgb", "gray", "bgr"):
        raise ValueError(f"color must be 'rgb', 'gray' or 'bgr', got {color!r}")
    cap = _open_capture(p, threads)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        declared = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        frames: list[np.ndarray] = []
        while max_frames is None or len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(_convert(frame, color))
    finally:
        cap.release()
    if not frames:
        raise MediaError(p, "no video frames could be decoded (corrupt, truncated or audio-only)")
    fps = _plausible_rate(p, fps)
    if max_frames is None:
        _warn_if_truncated(p, len(frames), declared, fps)
    return np.stack(frames), fps


def stream_video(path: str | os.PathLike[str], *, color: Literal["rgb", "gray", "bgr"] = "gray",
                 threads: int = 1) -> tuple[Iterator[np.ndarray], float]:
    """The frames of a video one at a time: what :func:`read_video` returns, without holding them.

    An hour of 360x288 gray video is 9 GB as one array; streamed, one frame is held at a time.
    The frames and the rate are those of :func:`read_video` (same decoder, same colour
    conversion, the same rule for an implausible container rate, :func:`_plausible_rate`).

    Returns:
        ``(frames, fps)``: a one-pass iterator of uint8 frames and the frame rate.

    Raises:
        MediaError: the file is missing, empty or not a video (at the call; a file whose
            frames do not decode gives an empty iterator).

    Examples:
        >>> stream_video("missing.mp4")
        Traceback (most recent call last):
        ...
        avtoolkit.data.media.MediaError: missing.mp4: file does not exist
    """
    import cv2

    p = _check_file(path)
    if color not in ("rgb", "gray", "bgr"):
        raise ValueError(f"color must be 'rgb', 'gray' or 'bgr', got {color!r}")
    cap = _open_capture(p, threads)
    fps = _plausible_rate(p, float(cap.get(cv2.CAP_PROP_FPS)))

    def frames() -> Iterator[np.ndarray]:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield _convert(frame, color)
        finally:
            cap.release()

    return frames(), fps


def _open_capture(p: Path, threads: int):
    """An opened ``cv2.VideoCapture`` of ``p`` (FFmpeg backend), or a MediaError."""
    import cv2

    # OpenCV logs a warning on stderr for every file it cannot open; the MediaError below
    # says it once, with the file name, so a corrupt clip in a large preparation run is
    # not reported twice.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        cap = cv2.VideoCapture(str(p), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(threads)])
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        cap.release()
        raise MediaError(p, "OpenCV could not open it as a video (corrupt or unsupported format)")
    return cap


def _convert(frame: np.ndarray, color: str) -> np.ndarray:
    import cv2

    if color == "rgb":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if color == "gray":
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return frame


#: frame rates a camera records at; a container rate outside this is a muxing artefact.
PLAUSIBLE_FPS = (1.0, 120.0)


def _plausible_rate(path: Path, fps: float) -> float:
    """``fps``, or the stream's guessed rate when the container reports an impossible one.

    Some muxers write a timebase-derived rate: the GRID mp4s in ``shared/data/grid_s1`` report
    1875 fps for 25 fps video (OpenCV and PyAV's ``average_rate`` alike). Taken at face value it
    makes 75 frames last 0.04 s, and resampling to 25 fps keeps one of them. PyAV's
    ``guessed_rate`` (FFmpeg's ``r_frame_rate`` guess from the timestamps) reads 25 there; when it
    is implausible too, :data:`DEFAULT_FPS`.
    """
    low, high = PLAUSIBLE_FPS
    if math.isfinite(fps) and low <= fps <= high:
        return fps
    guessed = None
    try:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.guessed_rate or stream.base_rate
            guessed = float(rate) if rate else None
    except Exception:  # an unreadable header: the frames decoded, so fall back to the default
        guessed = None
    if guessed is not None and low <= guessed <= high:
        rate = guessed
    else:
        rate = DEFAULT_FPS
    if math.isfinite(fps) and fps > 0:
        log.info("%s: the container reports %g fps, taken as %g", path, fps, rate)
    return rate


def _warn_if_truncated(path: Path, decoded: int, declared: float, fps: float) -> None:
    """Logs a warning when fewer frames decode than the file declares (a truncated copy).

    MPEG program streams (GRID's ``.mpg``) declare no length (FFmpeg estimates one from the
    bit rate), so there the packet walk of :func:`_mpeg_ps_cut` tells a cut-off file instead.
    """
    got = f"decoded {decoded} frames ({decoded / fps:.2f} s)"
    if path.suffix.lower() in (".mpg", ".mpeg", ".vob"):
        missing = _mpeg_ps_cut(path)
        if missing:
            log.warning("%s: truncated: its last MPEG packet ends %d bytes past the end of the file; %s, "
                        "the rest of the clip is lost", path, missing, got)
    elif math.isfinite(declared) and declared - decoded > 1:
        log.warning("%s: probably truncated: %s of the %d frames (%.2f s) its header declares", path, got,
                    int(declared), declared / fps)


def _mpeg_ps_cut(path: Path) -> int:
    """Bytes an MPEG program stream's last packet declares beyond the end of the file (0: complete)."""
    data = path.read_bytes()
    n, pos = len(data), 0
    while True:
        pos = data.find(b"\x00\x00\x01", pos)
        if pos < 0 or pos + 6 > n:
            return 0
        code = data[pos + 3]
        if code == 0xBA:  # pack header: MPEG-2 (14 bytes + stuffing) or MPEG-1 (12 bytes)
            size = 14 + (data[pos + 13] & 7) if pos + 14 <= n and data[pos + 4] >> 6 == 1 else 12
        elif code >= 0xBB:  # system header or PES packet: 6 bytes + its declared length
            size = 6 + int.from_bytes(data[pos + 4:pos + 6], "big")
        else:
            pos += 3
            continue
        if pos + size > n:
            return pos + size - n
        pos += size


def _read_pcm_wav(path: Path, sample_rate: int) -> np.ndarray | None:
    """16-bit PCM ``.wav`` already at ``sample_rate``, read without FFmpeg; else ``None``.

    Training with babble noise reads several wavs per utterance every epoch: opening a
    container through PyAV costs ~8 ms a file, this ~0.05 ms, with identical samples.
    Anything else (other widths, float, other rates, a damaged header) takes the PyAV path.
    """
    if path.suffix.lower() != ".wav":
        return None
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getframerate() != sample_rate or w.getnframes() == 0:
                return None
            channels = w.getnchannels()
            declared = w.getnframes()
            raw = w.readframes(declared)
    except (wave.Error, EOFError):
        return None
    block = 2 * channels
    if len(raw) < declared * block:
        # A copy cut off mid-sample: keep the whole samples, and say what is missing.
        log.warning("%s: truncated: %.2f s of the %.2f s its header declares are in the file", path,
                    len(raw) // block / sample_rate, declared / sample_rate)
        raw = raw[: len(raw) // block * block]
        if not raw:
            raise MediaError(path, "truncated: its data chunk holds no whole sample")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32)


def read_audio(path: str | os.PathLike[str], sample_rate: int = 16000) -> np.ndarray:
    """Decodes the first audio track of a media file to mono float samples.

    Channels are mixed to mono by averaging (done here, not by libswresample's
    downmix matrix, so a stereo file with the same signal in both channels keeps its
    level), then resampled with libswresample to ``sample_rate``.

    Args:
        path: any container PyAV reads: wav, flac, mp3, or the audio track of mp4/mpg.
        sample_rate: output rate in Hz.

    Returns:
        float32 ``[S]`` samples in ``[-1, 1]``.

    Raises:
        MediaError: the file is missing, empty or corrupt, has no audio track, or its
            audio track decodes to no samples.

    Examples:
        >>> read_audio("missing.wav")
        Traceback (most recent call last):
        ...
        avtoolkit.data.media.MediaError: missing.wav: file does not exist
    """
    import av

    p = _check_file(path)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    fast = _read_pcm_wav(p, sample_rate)
    if fast is not None:
        return fast
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise MediaError(p, f"PyAV could not open it ({exc})") from exc
    with container:
        if not container.streams.audio:
            raise MediaError(p, "the file has no audio track")
        stream = container.streams.audio[0]
        # Planar float at the source layout and rate first (the resampler takes both from
        # the first frame, which also covers layouts FFmpeg cannot name); mono mixing
        # below is a mean.
        to_float = av.AudioResampler(format="fltp")
        chunks: list[np.ndarray] = []
        source_rate = stream.rate
        try:
            for frame in container.decode(stream):
                frame.pts = None  # the resampler rejects non-monotonic pts some .mpg files carry
                for out in to_float.resample(frame):
                    chunks.append(out.to_ndarray())
                    source_rate = out.sample_rate
            for out in to_float.resample(None):
                chunks.append(out.to_ndarray())
        except av.FFmpegError as exc:
            raise MediaError(p, f"audio track is corrupt ({exc})") from exc
    if not chunks:
        raise MediaError(p, "the audio track decodes to no samples")
    mono = np.concatenate(chunks, axis=1).mean(axis=0, dtype=np.float32)
    if source_rate != sample_rate:
        mono = _resample(mono, source_rate, sample_rate)
    return np.clip(mono, -1.0, 1.0, out=mono)


def _resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc, anti-aliased when downsampling)."""
    import torch
    import torchaudio.functional as AF

    out = AF.resample(torch.from_numpy(samples), source_rate, target_rate)
    return out.numpy().astype(np.float32, copy=False)
