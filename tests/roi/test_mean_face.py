"""Alignment to the mean face: a rotated, scaled, shifted face gives the same crop; gap filling."""

from __future__ import annotations

import numpy as np
import pytest

from avtoolkit.data.media import MediaError
from avtoolkit.roi.crop import MouthCropper
from avtoolkit.roi.mean_face import MEAN_FACE_68, fill_missing, similarity_transform, smooth
from avtoolkit.roi.aligned_crops import aligned_crops


def canonical_face(seed: int = 0) -> np.ndarray:
    """A 256x256 gray face: smooth texture, dark eyes, nostrils and an open mouth at the mean face's points."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.integers(60, 200, (32, 32)).astype(np.uint8), (256, 256),
                       interpolation=cv2.INTER_CUBIC)
    image = noise.copy()
    for k in (36, 39, 42, 45, 33):
        cv2.circle(image, tuple(int(v) for v in MEAN_FACE_68[k]), 4, 20, -1)
    mouth = MEAN_FACE_68[48:60].astype(np.int32)
    cv2.fillPoly(image, [mouth], 10)
    return image


def place(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int], frames: int = 6):
    """The face warped into a larger frame by ``matrix``, with its landmarks moved the same way."""
    import cv2

    frame = cv2.warpAffine(image, matrix, (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=128)
    points = MEAN_FACE_68 @ matrix[:, :2].T + matrix[:, 2]
    return np.repeat(frame[None], frames, axis=0), np.repeat(points[None], frames, axis=0)


def similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.column_stack([rot, shift])


def test_rotated_scaled_shifted_face_gives_the_same_crop():
    face = canonical_face()
    upright, upright_pts = place(face, similarity(0, 1.0, (0, 0)), (256, 256))
    reference = aligned_crops(upright, upright_pts, (64, 64)).rois
    for angle, scale, shift in [(25, 0.6, (700, 250)), (-30, 2.0, (300, 40)), (10, 0.4, (1000, 500))]:
        frames, points = place(face, similarity(angle, scale, shift), (720, 1280))
        rois = aligned_crops(frames, points, (64, 64)).rois
        # Same picture up to resampling blur (a 0.4x face is upsampled 2.5x into the crop).
        assert np.abs(rois.astype(int) - reference.astype(int)).mean() < 12, (angle, scale)
        dark = rois[0] < 40  # the mouth polygon lands in the same place
        ref_dark = reference[0] < 40
        assert (dark & ref_dark).sum() / max(1, (dark | ref_dark).sum()) > 0.8


def test_mouth_is_centred_in_the_aligned_crop():
    frames, points = place(canonical_face(), similarity(15, 1.3, (200, 90)), (480, 640))
    rois = MouthCropper(size=(88, 88), method="landmarks").crop(frames, points)
    ys, xs = np.nonzero(rois[0] < 40)
    mouth = (xs > 20) & (xs < 68) & (ys > 30)  # ignore the nostril dot above the mouth
    assert abs(xs[mouth].mean() - 43.5) < 0.05 * 88 and abs(ys[mouth].mean() - 43.5) < 0.05 * 88


def test_boxes_give_the_crop_position_in_the_frame():
    frames, points = place(canonical_face(), similarity(0, 2.0, (100, 50)), (600, 700))
    boxes = MouthCropper(size=(96, 96), method="landmarks").boxes(frames, points)
    mouth = points[:, 48:68].mean(axis=1)
    assert np.allclose(boxes[:, :2], mouth, atol=2.0)
    assert np.allclose(boxes[:, 2], 2.0 * 1.7 * 56.0, rtol=0.02)  # 1.7 mouth widths at 2x


def test_similarity_transform_recovers_a_known_map():
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (5, 2))
    m = similarity(33, 0.7, (12, -4))
    assert np.allclose(similarity_transform(src, src @ m[:, :2].T + m[:, 2]), m)


def test_missing_frames_are_interpolated_and_the_ends_held():
    points = np.stack([np.full((68, 2), float(t)) for t in range(10)])
    points[[0, 4, 5, 9]] = np.nan
    filled = fill_missing(points)
    assert filled[4, 0, 0] == pytest.approx(4.0) and filled[5, 0, 0] == pytest.approx(5.0)
    assert filled[0, 0, 0] == 1.0 and filled[9, 0, 0] == 8.0  # nearest detection held


def test_a_clip_with_too_few_detections_is_an_error_naming_it():
    frames, points = place(canonical_face(), similarity(0, 1.0, (0, 0)), (256, 256), frames=10)
    points[:7] = np.nan
    with pytest.raises(MediaError, match=r"talk\.mp4: facial landmarks found on 3 of 10 frames"):
        MouthCropper(method="landmarks").crop(frames, points, source="talk.mp4")
    # The same clip passes when the user accepts sparser detections.
    rois = MouthCropper(method="landmarks", min_detected=0.3).crop(frames, points, source="talk.mp4")
    assert rois.shape == (10, 96, 96)


def test_smoothing_removes_jitter_of_a_still_head():
    rng = np.random.default_rng(0)
    _, points = place(canonical_face(), similarity(0, 1.0, (50, 50)), (400, 400), frames=50)
    noisy = points + rng.normal(0, 1.5, points.shape)
    frames = np.full((50, 400, 400), 128, np.uint8)
    centres = {w: aligned_crops(frames, noisy, (96, 96), smooth_window=w).boxes()[:, :2] for w in (1, 9)}
    jitter = {w: np.linalg.norm(np.diff(c, axis=0), axis=1).mean() for w, c in centres.items()}
    assert jitter[9] < 0.5 * jitter[1]
    assert np.allclose(smooth(np.arange(5.0), 3), np.arange(5.0))  # a steady motion is kept
