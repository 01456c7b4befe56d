"""The landmark detector's face choice with several faces, and the error when its extra is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from avtoolkit.errors import AvtoolkitError, MissingExtraError
from avtoolkit.roi import detector as det


def mesh_at(centre: np.ndarray, size: float) -> np.ndarray:
    """468 fake mesh points on a square of the given size, eyes (33, 263) levelled."""
    rng = np.random.default_rng(0)
    points = centre + rng.uniform(-size / 2, size / 2, (468, 2))
    points[33], points[263] = centre + [-size / 4, -size / 6], centre + [size / 4, -size / 6]
    return points


class ScriptedDetector(det.FaceMeshDetector):
    """FaceMeshDetector's real tracking loop on scripted faces instead of the two models.

    Frame t is filled with the value t so the hooks know which frame they see. ``faces[t]``
    lists (centre, size) of the faces in frame t; the mesh finds a face when its region is
    centred within half a face of one, and loses it on frames in ``lost``.
    """

    def __init__(self, faces, lost=()):  # no models loaded
        self.faces, self.lost, self.detections = faces, set(lost), 0

    def detect_faces(self, rgb):
        self.detections += 1
        out = []
        for centre, size in self.faces[int(rgb.flat[0])]:
            keys = np.array([centre + [-size / 4, -size / 6], centre + [size / 4, -size / 6]] + [centre] * 4)
            out.append((np.array([*centre, size, size], float), keys))
        return out

    def mesh(self, rgb, centre, size, angle):
        t = int(rgb.flat[0])
        if t in self.lost:
            return None
        for c, s in self.faces[t]:
            if np.hypot(*(np.asarray(centre) - c)) < s / 2:
                return mesh_at(np.asarray(c, float), s)
        return None


def run_tracker(faces, lost=()):
    tracker = ScriptedDetector(faces, lost)
    frames = np.stack([np.full((4, 4), t, np.uint8) for t in range(len(faces))])
    return tracker.track(frames), tracker


def centres(points: np.ndarray) -> np.ndarray:
    return points.mean(axis=1)  # NaN rows stay NaN


def test_first_frame_takes_the_largest_face_then_the_track_stays_on_it():
    big, small = np.array([100.0, 100.0]), np.array([300.0, 110.0])
    # From frame 3 the other face grows larger than the tracked one; the track loses its face
    # on frame 3 and must re-detect: the nearest face to where it was, not the largest, wins.
    faces = [[(big, 80.0), (small, 40.0)]] * 3 + [[(big + [6, 0], 60.0), (small, 120.0)]] * 3
    points, tracker = run_tracker(faces, lost={3})
    # The detector runs on frame 0, on frame 3 (mesh lost the face) and on frame 4 (no mesh
    # to follow); on frames 1, 2 and 5 the mesh tracks the face by itself.
    assert tracker.detections == 3
    found = centres(points)
    assert np.isnan(found[3]).all()
    kept = np.delete(found, 3, axis=0)
    assert np.all(np.abs(kept[:, 0] - 100) < 50), kept[:, 0]  # never jumps to the face at x=300


def test_a_frame_without_a_face_is_nan():
    faces = [[(np.array([50.0, 50.0]), 40.0)]] * 2 + [[]] + [[(np.array([52.0, 50.0]), 40.0)]]
    points, _ = run_tracker(faces, lost={2})
    assert np.isnan(points[2]).all() and not np.isnan(points[[0, 1, 3]]).any()


def test_nearest_face_rule():
    faces = [(np.array([0.0, 0.0, 10, 10]), None), (np.array([100.0, 0.0, 50, 50]), None)]
    assert det._nearest_face(faces, np.array([5.0, 0.0]))[0][0] == 0.0
    assert det._nearest_face(faces, np.array([90.0, 0.0]))[0][0] == 100.0


class MisleadingBoxes(ScriptedDetector):
    """Reports the smaller face with the larger box, as BlazeFace did on small GRID faces."""

    def detect_faces(self, rgb):
        faces = super().detect_faces(rgb)
        sizes = [f[0][2] for f in faces]
        for (box, _), size in zip(faces, reversed(sizes)):
            box[2:] = size
        return faces


def test_largest_face_is_judged_by_its_mesh_not_the_detector_box():
    big, small = np.array([100.0, 100.0]), np.array([300.0, 100.0])
    tracker = MisleadingBoxes([[(big, 80.0), (small, 50.0)]] * 3)
    points = tracker.track(np.stack([np.full((4, 4), t, np.uint8) for t in range(3)]))
    assert np.all(np.abs(centres(points)[:, 0] - 100) < 40)


def test_missing_extra_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    det._shared_detector.cache_clear()
    with pytest.raises(MissingExtraError, match=r"pip install 'avtoolkit\[landmarks\]'") as info:
        det.detect_landmarks(np.zeros((2, 32, 32), np.uint8))
    assert isinstance(info.value, AvtoolkitError) and "method 'face'" in str(info.value)
    det._shared_detector.cache_clear()


def test_missing_extra_is_one_line_from_the_command_line(monkeypatch, tmp_path, capsys):
    from avtoolkit.cli.main import main

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    det._shared_detector.cache_clear()
    video = tmp_path / "clip.mp4"
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "data"))
    try:
        from test_media import moving_bar, write_mp4  # the media tests' tiny mp4 writer
    finally:
        sys.path.pop(0)
    write_mp4(video, moving_bar(4))
    assert main(["crops", str(video), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "avtoolkit[landmarks]" in err and "Traceback" not in err
    det._shared_detector.cache_clear()


def test_mesh_to_68_is_a_68_point_layout():
    assert det.MESH_TO_68.shape == (68,) and len(set(det.MESH_TO_68.tolist())) == 68
    assert det.MESH_TO_68.max() < 468


class TileOnlyDetector(det.FaceMeshDetector):
    """Finds a face (a marked pixel) only in images at most half the frame's size, as the
    128x128 detector misses a face a few pixels wide in a whole 1280x720 frame."""

    def __init__(self, frame_width: int):
        self.frame_width = frame_width

    def detect_faces(self, rgb):
        if rgb.shape[1] > self.frame_width // 2 or rgb.max() == 0:
            return []
        y, x = np.unravel_index(np.argmax(rgb[..., 0]), rgb.shape[:2])
        centre = np.array([x, y], dtype=np.float64)
        return [(np.array([x, y, 30.0, 30.0]), np.repeat(centre[None], 6, axis=0))]


def test_small_face_in_a_large_frame_is_found_in_tiles():
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[600, 1100] = 255  # a far-away speaker near the bottom-right corner
    faces = TileOnlyDetector(1280).search_tiles(frame)
    assert len(faces) == 1  # overlapping tiles saw it several times: one face comes back
    assert np.allclose(faces[0][0][:2], [1100, 600])
