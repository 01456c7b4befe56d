"""68-point facial landmarks per frame from MediaPipe's face detector and face mesh, offline.

The two TensorFlow Lite models (``face_detection_short_range.tflite``, BlazeFace, and
``face_landmark.tflite``, the 468-point face mesh; Apache-2.0, from the ``mediapipe`` 0.10.21
wheel) ship inside this package (``avtoolkit/roi/models/``); they run on the LiteRT interpreter
of the ``landmarks`` extra (``pip install 'avtoolkit[landmarks]'``, which adds
``ai-edge-litert`` and nothing that provides a second ``cv2``). Nothing is downloaded.

Per clip the detector tracks one face as MediaPipe's own face-mesh graph does: the face mesh
runs on a square region around the previous frame's landmarks, and the face detector runs only
on the first frame and whenever the mesh says the face is gone. The 468 mesh points are reduced
to the 68-point (iBUG / dlib) layout that mpc001's and auto_avsr's preprocessing use
(:data:`MESH_TO_68`), so landmark files from either source are interchangeable.

Several faces: on the first detection, with no history, the largest face (the main speaker
in talking-head footage), measured by the extent of its face mesh, is taken; on every later
detection the face nearest to where the track was last seen, so the track stays on one
person even when another face grows larger.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable

import numpy as np

from avtoolkit.errors import MissingExtraError

MODELS_DIR = Path(__file__).parent / "models"
DETECTOR_FILE = "face_detection_short_range.tflite"
MESH_FILE = "face_landmark.tflite"
INSTALL_HINT = "pip install 'avtoolkit[landmarks]'  (adds ai-edge-litert, the TensorFlow Lite runtime)"

#: Face-mesh vertex for each of the 68 iBUG points: jaw 0-16, brows 17-26, nose 27-35,
#: eyes 36-47, mouth 48-67 (outer lip 48-59, inner lip 60-67).
MESH_TO_68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87,
])
_MESH_SIZE = 192
_DETECT_SIZE = 128
_MIN_SCORE = 0.5


def _interpreter(name: str):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise MissingExtraError(
            f"crop method 'landmarks' needs the landmark detector's runtime: {INSTALL_HINT}; "
            "without it use method 'face' (OpenCV Haar cascade) or supply landmark files"
        ) from exc
    # One thread: prepare runs one clip per worker process, so threads would only contend.
    interp = Interpreter(model_path=str(MODELS_DIR / name), num_threads=1)
    interp.allocate_tensors()
    return interp


@functools.lru_cache(maxsize=1)
def _anchors() -> np.ndarray:
    """BlazeFace short-range SSD anchor centres, ``[896, 2]`` in [0, 1].

    Strides 8, 16, 16, 16 with 2 anchors per cell and layer; layers of the same stride share
    one grid, so stride 8 gives 16x16x2 and stride 16 gives 8x8x6 anchors.
    """
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.mgrid[0:grid, 0:grid]
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out)


class FaceMeshDetector:
    """Tracks one face through a clip and returns its 68 landmarks per frame.

    Raises:
        MissingExtraError: the ``landmarks`` extra (``ai-edge-litert``) is not installed.

    Examples:
        >>> detector = FaceMeshDetector()  # doctest: +SKIP
        >>> detector.track(frames).shape  # doctest: +SKIP
        (75, 68, 2)
    """

    def __init__(self) -> None:
        self._detector = _interpreter(DETECTOR_FILE)
        self._mesh = _interpreter(MESH_FILE)

    def detect_faces(self, rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Faces in one RGB or gray frame as ``(box, keypoints)``: ``[cx, cy, w, h]``, ``[6, 2]`` px.

        Keypoints are the right eye, left eye, nose tip, mouth, right ear, left ear (the
        subject's right is the image's left).
        """
        import cv2

        height, width = rgb.shape[:2]
        side = max(height, width)
        # Letterbox to a square so the face keeps its proportions.
        square = cv2.copyMakeBorder(rgb, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
        small = _rgb(cv2.resize(square, (_DETECT_SIZE, _DETECT_SIZE), interpolation=cv2.INTER_AREA))
        inp = small[None].astype(np.float32) / 127.5 - 1.0
        self._detector.set_tensor(self._detector.get_input_details()[0]["index"], inp)
        self._detector.invoke()
        outs = {d["name"]: self._detector.get_tensor(d["index"]) for d in self._detector.get_output_details()}
        raw, logits = outs["regressors"][0], outs["classificators"][0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
        keep = np.flatnonzero(scores >= _MIN_SCORE)
        if len(keep) == 0:
            return []
        anchors = _anchors()[keep]
        reg = raw[keep] / _DETECT_SIZE
        centres = reg[:, :2] + anchors
        sizes = reg[:, 2:4]
        points = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]
        faces = []
        for i in _nms(centres, sizes, scores[keep]):
            box = np.concatenate([centres[i], sizes[i]]) * side
            faces.append((box, points[i] * side))
        return faces

    def search_tiles(self, rgb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Faces too small for the whole-frame pass, found in overlapping tiles.

        The detector sees the frame at 128x128, so a face under ~1/8 of the frame's side (a
        speaker far away in a 1280x720 shot) is a few pixels there and is missed. Tiles of 1/2
        and 1/4 of the frame's shorter side, overlapping by half, see it 2x and 4x larger.
        This runs only when the whole-frame pass finds nothing (first frame, face lost).
        """
        height, width = rgb.shape[:2]
        faces: list[tuple[np.ndarray, np.ndarray]] = []
        for side in (min(height, width) // 2, min(height, width) // 4):
            if side < 96:
                break
            step = side // 2
            for y in sorted({*range(0, height - side + 1, step), height - side}):
                for x in sorted({*range(0, width - side + 1, step), width - side}):
                    for box, keys in self.detect_faces(rgb[y:y + side, x:x + side]):
                        offset = np.array([x, y], dtype=np.float64)
                        faces.append((np.concatenate([box[:2] + offset, box[2:]]), keys + offset))
            if faces:
                break
        if len(faces) < 2:
            return faces
        centres = np.stack([f[0][:2] for f in faces])
        sizes = np.stack([f[0][2:] for f in faces])
        scores = sizes.prod(axis=1)  # overlapping tiles see the same face: keep the largest box
        return [faces[i] for i in _nms(centres, sizes, scores)]

    def mesh(self, rgb: np.ndarray, centre: np.ndarray, size: float, angle: float) -> np.ndarray | None:
        """468 mesh points ``[468, 2]`` in a square region (centre, side, roll), or ``None``."""
        import cv2

        matrix = _region_matrix(centre, size, angle)
        patch = cv2.warpAffine(rgb, matrix, (_MESH_SIZE, _MESH_SIZE), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        inp = _rgb(patch)[None].astype(np.float32) / 255.0
        self._mesh.set_tensor(self._mesh.get_input_details()[0]["index"], inp)
        self._mesh.invoke()
        outs = self._mesh.get_output_details()
        points = self._mesh.get_tensor(outs[0]["index"]).reshape(468, 3)[:, :2]
        face_logit = float(self._mesh.get_tensor(outs[1]["index"]).ravel()[0])
        if face_logit < 0:  # sigmoid < 0.5: the region holds no face
            return None
        inverse = cv2.invertAffineTransform(matrix)
        return points @ inverse[:, :2].T + inverse[:, 2]

    def _largest_mesh(self, rgb: np.ndarray, faces) -> np.ndarray | None:
        """The mesh of the largest face, sized by its mesh: BlazeFace's box sizes are too
        coarse for this (on GRID frames it gave a 0.8x face a box 1.3x the size of the other)."""
        meshes = [self.mesh(rgb, *_region_from_detection(box, keys)) for box, keys in faces]
        meshes = [m for m in meshes if m is not None]
        return max(meshes, key=_mesh_size) if meshes else None

    def track(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """68-point landmarks ``[T, 68, 2]`` (x, y) of one tracked face; NaN where none was found.

        Args:
            frames: uint8 ``[T, H, W, 3]`` RGB or ``[T, H, W]`` grayscale frames, or an
                iterator of such frames (a long video streamed: only the landmarks are kept).
        """
        rows: list[np.ndarray] = []
        previous: np.ndarray | None = None  # mesh of the last frame, [468, 2]
        last_seen: np.ndarray | None = None  # where the tracked face was last, [2]
        for rgb in frames:  # gray frames stay gray until cut down to model size
            points = None
            if previous is not None:
                points = self.mesh(rgb, *_region_from_mesh(previous))
            if points is None:
                faces = self.detect_faces(rgb) or self.search_tiles(rgb)
                if faces and last_seen is not None:
                    box, keys = _nearest_face(faces, last_seen)
                    points = self.mesh(rgb, *_region_from_detection(box, keys))
                elif faces:
                    points = self._largest_mesh(rgb, faces)
            previous = points
            rows.append(points[MESH_TO_68] if points is not None else _NOT_FOUND)
            if points is not None:
                last_seen = points.mean(axis=0)
        return np.stack(rows).astype(np.float64) if rows else np.full((0, 68, 2), np.nan)


_NOT_FOUND = np.full((68, 2), np.nan)


def _rgb(image: np.ndarray) -> np.ndarray:
    """A gray image as three equal channels (the models take RGB); RGB passes through."""
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def _nms(centres: np.ndarray, sizes: np.ndarray, scores: np.ndarray, iou: float = 0.3) -> list[int]:
    """Indices of boxes kept by greedy non-maximum suppression, best first."""
    order = list(np.argsort(-scores))
    lo, hi = centres - sizes / 2, centres + sizes / 2
    area = np.prod(sizes, axis=1)
    kept: list[int] = []
    while order:
        i = order.pop(0)
        kept.append(int(i))
        rest = np.array(order, dtype=int)
        if len(rest) == 0:
            break
        inter = np.prod(np.clip(np.minimum(hi[i], hi[rest]) - np.maximum(lo[i], lo[rest]), 0, None), axis=1)
        overlap = inter / (area[i] + area[rest] - inter + 1e-9)
        order = [int(j) for j, o in zip(rest, overlap) if o < iou]
    return kept


def _nearest_face(faces, last_seen: np.ndarray):
    """The detected face whose box centre is nearest to where the track was last seen."""
    return min(faces, key=lambda f: float(np.hypot(*(f[0][:2] - last_seen))))


def _mesh_size(points: np.ndarray) -> float:
    """Side of the mesh's bounding square: the face's size in pixels."""
    return float(np.max(points.max(axis=0) - points.min(axis=0)))


def _region_from_detection(box: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, float, float]:
    # MediaPipe's detection-to-region rule: roll from the eye line, 1.5x the box's longer side.
    eye_r, eye_l = keys[0], keys[1]
    angle = float(np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0]))
    return box[:2].copy(), 1.5 * float(max(box[2], box[3])), angle


def _region_from_mesh(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    # MediaPipe's landmarks-to-region rule: roll from the outer eye corners (33, 263), square
    # around the rotated bounding box of the mesh, 1.5x its longer side.
    eye_r, eye_l = points[33], points[263]
    angle = float(np.arctan2(eye_l[1] - eye_r[1], eye_l[0] - eye_r[0]))
    c, s = np.cos(-angle), np.sin(-angle)
    upright = points @ np.array([[c, s], [-s, c]])  # rotate by -angle
    lo, hi = upright.min(axis=0), upright.max(axis=0)
    centre_upright = (lo + hi) / 2
    centre = centre_upright @ np.array([[c, -s], [s, c]])  # back to the frame
    return centre, 1.5 * float(max(hi - lo)), angle


def _region_matrix(centre: np.ndarray, size: float, angle: float) -> np.ndarray:
    """Affine map from the frame to the ``_MESH_SIZE`` square of a rotated region."""
    scale = _MESH_SIZE / max(size, 1.0)
    c, s = np.cos(-angle) * scale, np.sin(-angle) * scale
    rot = np.array([[c, -s], [s, c]])
    shift = np.array([_MESH_SIZE / 2, _MESH_SIZE / 2]) - rot @ np.asarray(centre, dtype=np.float64)
    return np.column_stack([rot, shift])


def detect_landmarks(frames: Iterable[np.ndarray]) -> np.ndarray:
    """68-point landmarks ``[T, 68, 2]`` of the tracked face of a clip (NaN where not found).

    Raises:
        MissingExtraError: the ``landmarks`` extra is not installed (the message says how).
    """
    return _shared_detector().track(frames)


@functools.lru_cache(maxsize=1)
def _shared_detector() -> FaceMeshDetector:
    """One detector per process: loading both models takes ~20 ms."""
    return FaceMeshDetector()
