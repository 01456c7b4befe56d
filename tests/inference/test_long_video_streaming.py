"""The long-video path streams its frames: same crops as the whole clip, memory flat in length.

A real GRID s1 clip (whose mp4 declares 1875 fps for 25 fps video) is cut into windows by the
streaming path and by cropping the whole decoded clip; a synthetic low-resolution video made
at test time with PyAV shows that the frames held do not grow with the video's length.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from avtoolkit import build_model
from avtoolkit.data.text import CHARACTERS
from avtoolkit.inference.long_video import (find_utterances, read_recording, resample_to_25fps, stream_at_25fps,
                                            transcribe_recording)
from avtoolkit.inference.subtitles import Cue
from avtoolkit.inference.transcriber import Transcriber
from tiny_models import TINY_AV_CTC

CLIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid_s1" / "s1" / "bbaf2n.mp4"


def _video_checkpoint(folder: Path, crop_method: str) -> Path:
    model_cfg = {**TINY_AV_CTC, "encoders": {"video": TINY_AV_CTC["encoders"]["video"]}}
    model_cfg.pop("fusion")
    recipe = {"name": "vsr", "model": model_cfg, "data": {"name": "manifest", "video_size": 32, "crop_method": crop_method},
              "decoding": {"name": "greedy"}}
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    path = folder / f"vsr_{crop_method}.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {"recipe": recipe, "vocabulary": CHARACTERS, "task": "ctc", "version": "test"}}, path)
    return path


class _Recorder:
    """A Transcriber wrapper that keeps the crops each segment was given."""

    def __init__(self, asr: Transcriber) -> None:
        self.asr, self.videos = asr, []

    def __getattr__(self, name: str):
        return getattr(self.asr, name)

    def transcribe(self, **item):
        self.videos.append(item.get("video"))
        return self.asr.transcribe(**item)


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97, 50.0, 60.0, 12.5, 24.0, 120.0, 1.0])
def test_streamed_resampling_gives_the_frames_of_the_whole_clip(fps: float) -> None:
    for n in [1, 2, 3, 5, 7, 30, 31, 101]:
        whole = resample_to_25fps(np.arange(n), fps).tolist()
        assert [int(f) for f in stream_at_25fps(iter(range(n)), fps)] == whole, (fps, n)


@pytest.mark.skipif(not CLIP.is_file(), reason=f"{CLIP} not found (shared test data)")
def test_streamed_windows_have_the_crops_of_the_whole_clip(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="the landmarks extra (face tracks) is not installed")
    from avtoolkit.data.media import read_video
    from avtoolkit.roi import MouthCropper
    from avtoolkit.roi.detector import detect_landmarks

    asr = _Recorder(Transcriber.from_checkpoint(_video_checkpoint(tmp_path, "landmarks")))
    rec = read_recording(CLIP, need_video=True, need_audio=False)
    # the path before streaming: every frame decoded, the face tracked over the whole clip
    frames, fps = read_video(CLIP, color="gray", threads=0)
    frames = resample_to_25fps(frames, fps)
    landmarks = detect_landmarks(frames)
    assert fps == 25.0 and rec.frame_count == len(frames) == 75  # the declared 1875 fps is not taken
    np.testing.assert_array_equal(rec.landmarks, landmarks)

    cues = transcribe_recording(asr, rec, progress=False, max_s=1.2, overlap_s=0.4)  # 0-1.2, 0.8-2.0, 1.6-2.8...
    assert [c.cut_by for c in cues] == ["window"] * len(cues) and len(cues) == len(asr.videos) >= 3
    spans = [span for span, _ in find_utterances(rec, max_s=1.2, overlap_s=0.4)]
    cropper = MouthCropper(size=asr.video_size, method="landmarks")
    for span, got in zip(spans, asr.videos):
        a, b = int(round(span.start * 25)), int(round(span.end * 25))
        np.testing.assert_array_equal(got, cropper.crop(frames[a:b], landmarks[a:b]))


def _synthetic_video(path: Path, seconds: int, size: tuple[int, int] = (160, 120)) -> None:
    """A gray video at 25 fps, encoded a frame at a time (it is never held whole here either)."""
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ramp = np.tile(np.arange(width, dtype=np.uint8), (height, 1))
        for t in range(seconds * 25):
            gray = np.roll(ramp, t, axis=1)
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, axis=-1), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _peak_mb(asr, path: Path) -> tuple[float, list[Cue]]:
    tracemalloc.start()
    try:
        cues = transcribe_recording(asr, path, progress=False)
        return tracemalloc.get_traced_memory()[1] / 2**20, cues
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_video_length(tmp_path: Path, monkeypatch) -> None:
    """Peak traced memory for 40 s and 160 s of 160x120 video (whole: 19 KB a frame, 58 MB more)."""
    face = np.tile(np.array([[60.0, 50.0]]), (68, 1))
    # A face everywhere (the detector is what the crop test above checks): one long face track.
    monkeypatch.setattr("avtoolkit.roi.detector.detect_landmarks", lambda frames: np.stack([face for _ in frames]))
    asr = Transcriber.from_checkpoint(_video_checkpoint(tmp_path, "fixed"))
    short, long = tmp_path / "short.mp4", tmp_path / "long.mp4"
    _synthetic_video(short, 40)
    _synthetic_video(long, 160)
    peak_short, cues_short = _peak_mb(asr, short)
    peak_long, cues_long = _peak_mb(asr, long)
    assert len(cues_short) == 5 and len(cues_long) == 18  # 10 s windows overlapping by 1 s
    assert cues_long[-1].end == 160.0 and all(a.end == b.start for a, b in zip(cues_long, cues_long[1:]))
    # 120 s more of frames would be 3000 x 19.2 KB = 55 MB; landmarks are 1 KB a frame (3 MB)
    assert peak_long - peak_short < 8, (peak_short, peak_long)
