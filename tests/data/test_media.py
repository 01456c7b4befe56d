"""Decoding real media: GRID clips and small wav/flac/mp4 files the tests write."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avtoolkit.data.media import MediaError, read_audio, read_video

GRID = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid"
needs_grid = pytest.mark.skipif(
    not (GRID / "video" / "bbaf2n.mpg").exists(),
    reason=f"GRID sample clips not found at {GRID} (the repository's sibling shared/data/grid)",
)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Writes int16 PCM; ``samples`` is float [S] or [S, C] in [-1, 1]."""
    data = np.atleast_2d(samples.T).T if samples.ndim == 1 else samples
    with wave.open(str(path), "wb") as out:
        out.setnchannels(data.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(data, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def write_mp4(path: Path, frames: np.ndarray, fps: int = 25, audio: np.ndarray | None = None) -> Path:
    """h264 video of RGB ``frames`` [T, H, W, 3], with an optional mono 16 kHz AAC track."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("h264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        sound = out.add_stream("aac", rate=16000, layout="mono") if audio is not None else None
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            chunk = 1024  # AAC frame size
            pcm = np.pad(audio, (0, -len(audio) % chunk)).astype(np.float32)
            for start in range(0, len(pcm), chunk):
                frame = av.AudioFrame.from_ndarray(pcm[None, start:start + chunk], format="fltp",
                                                   layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = 16000, start, Fraction(1, 16000)
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def moving_bar(num_frames: int = 29, size: int = 64) -> np.ndarray:
    """A bright vertical bar moving 2 px to the right per frame on a dark background."""
    frames = np.full((num_frames, size, size, 3), 20, np.uint8)
    for t in range(num_frames):
        frames[t, :, 4 + 2 * t: 12 + 2 * t] = (230, 40, 40)  # red: checks RGB channel order
    return frames


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


# ---------------------------------------------------------------- GRID clips


@needs_grid
def test_grid_video_has_75_frames_at_25_fps():
    frames, fps = read_video(GRID / "video" / "bbaf2n.mpg")
    assert frames.shape == (75, 288, 360, 3) and frames.dtype == np.uint8
    assert fps == pytest.approx(25.0)
    # A talking face, not a blank decode: frames differ over time.
    assert np.abs(frames[0].astype(int) - frames[40].astype(int)).mean() > 1.0


@needs_grid
def test_grid_audio_track_is_speech_where_the_alignment_says():
    audio = read_audio(GRID / "video" / "bbaf2n.mpg", sample_rate=16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(3.0, abs=0.1)
    assert np.abs(audio).max() <= 1.0
    # align/bbaf2n.align (1000 units = one 40 ms frame): silence until 0.95 s, words
    # "bin blue at f two now" from 0.95 s to 2.12 s.
    rms = lambda a, b: float(np.sqrt(np.mean(audio[int(a * 16000): int(b * 16000)] ** 2)))
    assert rms(0.95, 2.12) > 0.02
    assert rms(0.95, 2.12) > 3 * rms(0.1, 0.85)


@needs_grid
def test_grid_max_frames_and_gray():
    frames, _ = read_video(GRID / "video" / "id2_vcd_swwp2s.mpg", max_frames=10, color="gray")
    assert frames.shape == (10, 288, 360)


# ---------------------------------------------------------------- files the test writes


def test_mp4_frames_come_back_in_order_and_rgb(tmp_path):
    written = moving_bar()
    frames, fps = read_video(write_mp4(tmp_path / "bar.mp4", written))
    assert frames.shape == written.shape and fps == pytest.approx(25.0)
    # The bar's column (brightest in red) moves 2 px per frame, as written.
    centres = frames[:, 32, :, 0].astype(int).argmax(axis=1)
    assert np.all(np.abs(centres - (4 + 2 * np.arange(29))) <= 7)
    red, green = frames[10, 32, 26, 0], frames[10, 32, 26, 1]
    assert red > 150 and green < 100, "channels must be RGB, not OpenCV's BGR"
    assert np.abs(frames.astype(int) - written.astype(int)).mean() < 6  # lossy codec only


def test_wav_sine_is_resampled_to_16k(tmp_path):
    t = np.arange(22050) / 22050  # one second
    path = write_wav(tmp_path / "sine.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 22050)
    audio = read_audio(path)
    assert len(audio) == pytest.approx(16000, abs=32)
    assert dominant_hz(audio, 16000) == pytest.approx(440, abs=3)
    assert np.abs(audio[1000:-1000]).max() == pytest.approx(0.5, abs=0.02)


def test_stereo_is_mixed_by_averaging_channels(tmp_path):
    t = np.arange(16000) / 16000
    left = 0.6 * np.sin(2 * np.pi * 1000 * t)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, np.zeros_like(left)], axis=1), 16000)
    audio = read_audio(path)
    assert len(audio) == 16000
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.01)


def test_flac_at_8k_is_upsampled(tmp_path):
    path = tmp_path / "tone.flac"
    t = np.arange(8000) / 8000
    pcm = (0.4 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    audio = read_audio(path, sample_rate=16000)
    assert len(audio) == pytest.approx(16000, abs=32)
    assert dominant_hz(audio, 16000) == pytest.approx(300, abs=3)


def test_audio_track_of_mp4(tmp_path):
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    path = write_mp4(tmp_path / "talk.mp4", moving_bar(25), audio=tone)
    audio = read_audio(path)
    assert len(audio) == pytest.approx(16000, abs=2048)  # AAC priming/padding
    assert dominant_hz(audio, 16000) == pytest.approx(500, abs=3)
    frames, _ = read_video(path)
    assert len(frames) == 25


def test_video_without_audio_track(tmp_path):
    path = write_mp4(tmp_path / "silent.mp4", moving_bar(5))
    with pytest.raises(MediaError, match=r"silent\.mp4: the file has no audio track"):
        read_audio(path)


def test_audio_file_is_not_a_video(tmp_path):
    path = write_wav(tmp_path / "a.wav", np.zeros(1600), 16000)
    with pytest.raises(MediaError, match=r"a\.wav: .*no video frames|a\.wav: OpenCV could not open"):
        read_video(path)


@pytest.mark.parametrize("reader", [read_video, read_audio])
def test_corrupt_empty_and_missing_files(tmp_path, reader):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    empty = tmp_path / "empty.mp4"
    empty.touch()
    for path, reason in [(corrupt, "could not open"), (empty, "file is empty"),
                         (tmp_path / "missing.mp4", "file does not exist")]:
        with pytest.raises(MediaError, match=reason) as info:
            reader(path)
        assert info.value.path == str(path) and str(path) in str(info.value)


def test_truncated_mp4_without_its_index_is_reported(tmp_path):
    path = write_mp4(tmp_path / "cut.mp4", moving_bar(29))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # moov atom at the end is lost: undecodable
    with pytest.raises(MediaError, match=r"cut\.mp4"):
        read_video(path)


def test_media_error_survives_pickling_for_worker_processes():
    import pickle

    err = pickle.loads(pickle.dumps(MediaError("x.mp4", "broken")))
    assert (err.path, err.reason, str(err)) == ("x.mp4", "broken", "x.mp4: broken")


def test_thread_count_does_not_change_the_frames(tmp_path):
    path = write_mp4(tmp_path / "bar.mp4", moving_bar(12))
    one, _ = read_video(path, threads=1)
    auto, _ = read_video(path, threads=0)
    np.testing.assert_array_equal(one, auto)


@pytest.mark.parametrize("channels", [1, 2])
def test_pcm_wav_fast_path_matches_the_ffmpeg_path(tmp_path, channels):
    import shutil

    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((16000, channels)) * 0.2).clip(-1, 1)
    wav = write_wav(tmp_path / "speech.wav", samples if channels > 1 else samples[:, 0], 16000)
    # the same bytes under another name go through PyAV/FFmpeg
    other = tmp_path / "speech.bin"
    shutil.copy(wav, other)
    fast, slow = read_audio(wav), read_audio(other)
    assert fast.dtype == np.float32 and fast.shape == slow.shape == (16000,)
    np.testing.assert_allclose(fast, slow, atol=1e-6)


GRID_S1_CLIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid_s1" / "s1" / "bbaf2n.mp4"


@pytest.mark.skipif(not GRID_S1_CLIP.exists(), reason=f"GRID s1 clips not found at {GRID_S1_CLIP.parent}")
def test_a_container_rate_of_1875_fps_is_read_as_the_streams_25() -> None:
    # These mp4s declare 1875 fps (a timebase artefact); at face value 75 frames would last
    # 0.04 s and resampling to 25 fps would keep one frame.
    import cv2

    cap = cv2.VideoCapture(str(GRID_S1_CLIP), cv2.CAP_FFMPEG)
    assert cap.get(cv2.CAP_PROP_FPS) == 1875.0
    cap.release()
    frames, fps = read_video(GRID_S1_CLIP, color="gray")
    assert fps == 25.0 and frames.shape[0] == 75


def test_an_impossible_rate_with_no_readable_stream_rate_is_the_default(tmp_path: Path) -> None:
    from avtoolkit.data.media import DEFAULT_FPS, _plausible_rate

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    assert _plausible_rate(junk, 1875.0) == DEFAULT_FPS and _plausible_rate(junk, 29.97) == 29.97
