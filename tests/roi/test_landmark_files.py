"""Landmark files: mpc001 .pkl lists, .npy arrays, and the detected landmarks cached for reuse."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from avtoolkit.data.media import MediaError
from avtoolkit.roi.landmark_files import load_landmarks, save_landmarks


def test_mpc001_pickle_list_with_missing_frames(tmp_path):
    frames = [np.full((68, 2), 3.0), None, np.full((68, 2), 5.0)]
    path = tmp_path / "ABOUT_00001.pkl"
    path.write_bytes(pickle.dumps(frames))
    points = load_landmarks(path)
    assert points.shape == (3, 68, 2)
    assert points[0, 0, 0] == 3.0 and np.isnan(points[1]).all() and points[2, 67, 1] == 5.0


def test_pickle_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(MediaError, match=r"evil\.pkl: cannot read landmarks: refusing to load"):
        load_landmarks(path)


def test_npy_round_trip_and_shape_check(tmp_path):
    points = np.random.default_rng(0).uniform(0, 300, (7, 68, 2))
    points[2] = np.nan
    save_landmarks(tmp_path / "a.npy", points)
    back = load_landmarks(tmp_path / "a.npy")
    assert np.allclose(back, points, atol=1e-3, equal_nan=True)
    np.save(tmp_path / "b.npy", np.zeros((7, 20, 2)))
    with pytest.raises(MediaError, match=r"b\.npy: landmarks must be \[T, 68, 2\]"):
        load_landmarks(tmp_path / "b.npy")


def test_detected_landmarks_are_saved_and_reused(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from avtoolkit.roi.crop import MouthCropper, mouth_rois
    from avtoolkit.roi import detector

    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    try:
        from test_media import moving_bar, write_mp4
    finally:
        sys.path.pop(0)
    video = write_mp4(tmp_path / "clip.mp4", moving_bar(6))
    calls = []

    def fake_detect(frames):  # a still face: the mean face shifted into the frame
        from avtoolkit.roi.mean_face import MEAN_FACE_68

        calls.append(len(frames))
        return np.repeat((MEAN_FACE_68 * 0.3)[None], len(frames), axis=0)

    monkeypatch.setattr(detector, "detect_landmarks", fake_detect)
    cropper = MouthCropper(size=(32, 32), method="landmarks")
    first = mouth_rois(video, tmp_path / "cache", cropper)
    saved = list((tmp_path / "cache" / "landmarks").glob("clip-*.npy"))
    assert len(saved) == 1 and load_landmarks(saved[0]).shape == (6, 68, 2)
    # Another crop size re-crops from the saved landmarks without detecting again.
    second = mouth_rois(video, tmp_path / "cache", MouthCropper(size=(48, 48), method="landmarks"))
    assert calls == [6] and first.shape == (6, 32, 32) and second.shape == (6, 48, 48)
