"""Mouth ROIs: the fixed LRW box, face-detector crops on GRID, landmarks, and the disk cache."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from avtoolkit.data.media import MediaError, read_video
from avtoolkit.roi import MouthCropper, mouth_rois

GRID = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid"
needs_grid = pytest.mark.skipif(
    not (GRID / "mouth_roi" / "bbaf2n").is_dir(),
    reason=f"GRID sample clips and reference crops not found at {GRID}",
)


def write_mp4(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def lrw_like_clip(num_frames: int = 29) -> np.ndarray:
    """256x256 frames: textured background, a bright square exactly on LRW's mouth box."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (num_frames, 256, 256, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t, 115:211, 79:175] = 200
        frames[t, 150:170, 100 + t: 130 + t] = 90  # a "mouth" that moves
    return frames


# ---------------------------------------------------------------- fixed


def test_fixed_box_is_lrw_rows_115_211_cols_79_175():
    frames = lrw_like_clip(3)
    rois = MouthCropper().crop(frames)
    assert rois.shape == (3, 96, 96) and rois.dtype == np.uint8
    expected = cv2.cvtColor(np.ascontiguousarray(frames[1, 115:211, 79:175]), cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(rois[1], expected)


def test_fixed_gray_input_equals_rgb_input_and_other_sizes_rescale():
    frames = lrw_like_clip(2)
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    np.testing.assert_array_equal(MouthCropper().crop(gray), MouthCropper().crop(frames))
    small = MouthCropper(size=(48, 64)).crop(frames)
    assert small.shape == (2, 48, 64)
    assert abs(int(small[0, 2, 2]) - 200 * 0.587 - 0.299 * 200 - 0.114 * 200) < 3  # inside the box
    # The same fractions on a frame of twice the size cut the same content.
    big = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)
    assert np.abs(MouthCropper().crop(big).astype(int) - MouthCropper().crop(frames)).mean() < 4


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="method must be"):
        MouthCropper(method="lips")
    with pytest.raises(ValueError, match="fixed_box"):
        MouthCropper(fixed_box=(0.9, 0.1, 0.5, 0.5))
    with pytest.raises(ValueError, match=r"uint8 \[T, H, W, 3\].*float32.* from clip\.mp4"):
        MouthCropper().crop(np.zeros((2, 8, 8, 3), np.float32), source="clip.mp4")


# ---------------------------------------------------------------- face detector


@needs_grid
def test_face_crop_lands_on_the_mouth_of_the_reference_crops():
    frames, _ = read_video(GRID / "video" / "bbaf2n.mpg")
    cropper = MouthCropper(size=(50, 100), method="face")
    boxes = cropper.boxes(frames)
    distances, correlations = [], []
    rois = cropper.crop(frames)
    for t in range(0, 75, 3):
        ref = cv2.imread(str(GRID / "mouth_roi" / "bbaf2n" / f"mouth_image{t + 1:03d}.png"))
        ref = cv2.cvtColor(ref, cv2.COLOR_BGR2RGB)
        # The reference crops are cut from these very frames: find where.
        score = cv2.matchTemplate(frames[t], ref, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(score)
        assert best > 0.95
        distances.append(np.hypot(boxes[t, 0] - (x + 50), boxes[t, 1] - (y + 25)))
        ours = rois[t].astype(float) - rois[t].mean()
        theirs = cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY).astype(float)
        theirs -= theirs.mean()
        correlations.append((ours * theirs).sum() / np.sqrt((ours**2).sum() * (theirs**2).sum()))
    # Centres agree within a few pixels of a 100-px-wide crop (measured: median ~4, max ~6).
    assert np.median(distances) < 8 and max(distances) < 12, distances
    assert np.mean(correlations) > 0.5, correlations
    # The crop is about a mouth-width wide and does not jitter between frames.
    assert 70 < boxes[:, 2].mean() < 130
    assert np.abs(np.diff(boxes[:, :2], axis=0)).max() < 3


@needs_grid
def test_face_crop_centres_the_lips_of_every_grid_speaker():
    # No reference crops for the other clips: the lip line is the darkest row of the
    # crop's central columns (nostrils and chin shadow are lighter), and should sit
    # near the middle row (48 of 96). Measured: rows 43-47 on all six clips.
    for video in sorted((GRID / "video").glob("*.mpg")):
        rois = mouth_rois(video, None, MouthCropper(method="face"))
        assert rois.shape == (75, 96, 96)
        profile = rois[:, :, 33:63].mean(axis=(0, 2))
        lip_row = int(profile[8:88].argmin()) + 8
        assert abs(lip_row - 48) <= 12, (video.name, lip_row)


def test_no_face_anywhere_names_the_source():
    frames = np.random.default_rng(1).integers(0, 255, (6, 120, 160, 3), dtype=np.uint8)
    with pytest.raises(MediaError, match=r"noise\.mp4: no face found in any of the 6 frames"):
        MouthCropper(method="face").crop(frames, source="noise.mp4")


# ---------------------------------------------------------------- landmarks


def mouth_landmarks(centres: np.ndarray, width: float = 40.0) -> np.ndarray:
    """68 points per frame; 48-67 on an ellipse of the given width around each centre."""
    points = np.zeros((len(centres), 68, 2))
    points[:, :48] = centres[:, None] + [0, -80]  # rest of the face, above the mouth
    angle = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    ellipse = np.stack([width / 2 * np.cos(angle), width / 4 * np.sin(angle)], axis=1)
    points[:, 48:] = centres[:, None] + ellipse
    return points


def test_landmark_crop_follows_the_mouth_and_fills_missing_frames():
    centres = np.array([[100.0 + 4 * t, 150.0] for t in range(8)])
    frames = np.full((8, 240, 320, 3), 180, np.uint8)
    for t, (cx, cy) in enumerate(centres):
        cv2.ellipse(frames[t], (int(cx), int(cy)), (20, 10), 0, 0, 360, (20, 20, 20), -1)
    landmarks = mouth_landmarks(centres)
    landmarks[3] = np.nan  # a frame where the landmark detector failed
    cropper = MouthCropper(size=(64, 64), method="landmarks", landmark_scale=2.0, align=False)
    rois = cropper.crop(frames, landmarks)
    assert rois.shape == (8, 64, 64)
    boxes = cropper.boxes(frames, landmarks)
    assert np.allclose(boxes[:, 2], 80.0)  # 2 x the 40-px mouth width, constant over the clip
    for t in (0, 4, 7):  # the dark mouth sits in the middle of the crop
        ys, xs = np.nonzero(rois[t] < 100)
        assert abs(xs.mean() - 31.5) < 3 and abs(ys.mean() - 31.5) < 3
    assert abs(boxes[3, 0] - centres[2:5, 0].mean()) <= 4.0  # filled from its neighbours


def test_landmark_errors():
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    cropper = MouthCropper(method="landmarks", align=False)
    with pytest.raises(ValueError, match="needs landmarks"):
        cropper.crop(frames)
    with pytest.raises(ValueError, match=r"shape \[T=2, 68, 2\] for a\.mp4"):
        cropper.crop(frames, np.zeros((2, 20, 2)), source="a.mp4")
    with pytest.raises(MediaError, match="missing"):
        cropper.crop(frames, np.full((2, 68, 2), np.nan))


def test_crop_near_the_frame_edge_repeats_edge_pixels():
    frames = np.full((1, 100, 100, 3), 77, np.uint8)
    landmarks = mouth_landmarks(np.array([[2.0, 98.0]]))
    rois = MouthCropper(size=(32, 32), method="landmarks", align=False).crop(frames, landmarks)
    assert rois.shape == (1, 32, 32) and np.all(rois == 77)


# ---------------------------------------------------------------- cache


def test_mouth_rois_caches_once_and_recrops_when_anything_changes(tmp_path):
    video = write_mp4(tmp_path / "ABOUT_00001.mp4", lrw_like_clip())
    cache = tmp_path / "cache"
    cropper = MouthCropper()
    first = mouth_rois(video, cache, cropper)
    assert first.shape == (29, 96, 96) and first.dtype == np.uint8
    files = sorted(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("ABOUT_00001-")
    np.testing.assert_array_equal(mouth_rois(video, cache, cropper), first)
    assert sorted(cache.iterdir()) == files  # served from the cache, nothing new written

    mouth_rois(video, cache, MouthCropper(size=(88, 88)))  # other settings: another entry
    assert len(list(cache.iterdir())) == 2
    os.utime(video, ns=(time.time_ns(), time.time_ns() + 10**9))  # the video changed
    mouth_rois(video, cache, cropper)
    assert len(list(cache.iterdir())) == 3
    assert not list(cache.glob(".*"))  # no temporary files left behind


def test_a_damaged_cache_file_is_remade(tmp_path):
    video = write_mp4(tmp_path / "clip.mp4", lrw_like_clip(5))
    cache = tmp_path / "cache"
    expected = mouth_rois(video, cache, MouthCropper())
    (entry,) = cache.iterdir()
    entry.write_bytes(entry.read_bytes()[:40])
    np.testing.assert_array_equal(mouth_rois(video, cache, MouthCropper()), expected)
    with np.load(entry) as data:
        np.testing.assert_array_equal(data["rois"], expected)


def test_corrupt_video_raises_and_caches_nothing(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    with pytest.raises(MediaError, match=r"broken\.mp4"):
        mouth_rois(video, tmp_path / "cache", MouthCropper())
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
