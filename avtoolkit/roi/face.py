"""Face boxes from OpenCV's bundled Haar cascade, and their smoothing over time."""

from __future__ import annotations

import functools

import numpy as np

CASCADE_FILE = "haarcascade_frontalface_default.xml"


@functools.lru_cache(maxsize=1)
def _cascade():
    """Loads the cascade once per process (parsing the XML takes ~50 ms)."""
    import cv2

    path = cv2.data.haarcascades + CASCADE_FILE
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():  # opencv-python >= 5 dropped the bundled cascades
        raise FileNotFoundError(f"OpenCV's Haar cascade is missing: {path}")
    return cascade


def detect_face(gray: np.ndarray, detect_width: int) -> np.ndarray | None:
    """The largest frontal face in one grayscale frame, or ``None``.

    Args:
        gray: uint8 ``[H, W]`` frame.
        detect_width: the frame is downscaled to this width before detection (the
            cascade's cost grows with pixels; faces in speech clips are large).

    Returns:
        ``[x, y, w, h]`` float box in the coordinates of ``gray``.
    """
    import cv2

    scale = min(1.0, detect_width / gray.shape[1])
    small = gray if scale == 1.0 else cv2.resize(
        gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
    )
    min_side = max(20, int(0.15 * min(small.shape)))  # a speaker's face, not background texture
    faces = _cascade().detectMultiScale(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
    )
    if len(faces) == 0:
        return None
    best = max(faces, key=lambda b: b[2] * b[3])
    return np.asarray(best, dtype=np.float64) / scale


def track_faces(
    gray_frames: np.ndarray, every: int, detect_width: int
) -> np.ndarray | None:
    """Face boxes for every frame: detect on every ``every``-th frame, smooth, fill gaps.

    Detections are smoothed with a running median over 5 detections (box centre and
    size separately), which removes the cascade's frame-to-frame jitter and single
    outliers without lagging behind real head motion. Frames between detections are
    linearly interpolated; frames before the first (after the last) detection reuse the
    first (last) one; frames whose detection failed take the nearest detection.

    Returns:
        float ``[T, 4]`` boxes ``(cx, cy, w, h)``, or ``None`` when no frame has a face.
    """
    num = len(gray_frames)
    idx = list(range(0, num, max(1, every)))
    if idx[-1] != num - 1:
        idx.append(num - 1)
    hits_t: list[int] = []
    hits: list[np.ndarray] = []
    for t in idx:
        box = detect_face(gray_frames[t], detect_width)
        if box is not None:
            x, y, w, h = box
            hits_t.append(t)
            hits.append(np.array([x + w / 2, y + h / 2, w, h]))
    if not hits:
        return None
    boxes = np.stack(hits)
    boxes = running_median(boxes, 5)
    out = np.empty((num, 4))
    times = np.arange(num)
    for k in range(4):
        out[:, k] = np.interp(times, hits_t, boxes[:, k])
    return out


def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median over a centred window along axis 0.

    The window shrinks symmetrically at the ends (frame 0 is its own median), so steady
    motion is not pulled towards the inside of the clip at its first and last frames.
    """
    num = len(values)
    out = np.empty_like(values, dtype=np.float64)
    for i in range(num):
        half = min(window // 2, i, num - 1 - i)
        out[i] = np.median(values[i - half: i + half + 1], axis=0)
    return out
