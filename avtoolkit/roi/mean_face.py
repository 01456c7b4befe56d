"""Mouth crops aligned to a mean face: similarity transform, smoothing, gap filling.

The recipe of mpc001's LRW preprocessing and auto_avsr, in four steps:

1. frames without landmarks take values interpolated linearly from the nearest frames that
   have them (held constant before the first and after the last); a clip where fewer than
   ``min_detected`` of the frames have landmarks is an error naming the clip;
2. the stable points (eye corners and the base of the nose, :data:`STABLE_POINTS`, which do
   not move when the speaker talks) are averaged over a centred window of ``smooth_window``
   frames, so the alignment does not shake with landmark noise;
3. each frame is mapped onto :data:`MEAN_FACE_68` (a 256x256 reference face) by the
   least-squares similarity transform (rotation, uniform scale, shift) of its smoothed stable
   points, which removes head roll, distance to the camera and position in the frame;
4. a box ``scale`` reference mouth-widths wide, centred on the clip's median mouth centre
   in the reference frame (constant over the clip: the crop neither zooms nor jumps), is cut
   from every aligned frame in one ``warpAffine`` per frame.
"""

from __future__ import annotations

import os

import numpy as np

from avtoolkit.data.media import MediaError

#: 68 points (x, y) of the reference face in a 256x256 frame: the Procrustes mean of the face
#: mesh's landmarks on 225 GRID s1 frames (every 5th frame of 15 clips), eyes levelled, scaled
#: to a 56-px mouth (corner to corner) centred at (128, 163), where LRW's 96x96 mouth box of
#: rows 115..211, columns 79..175 is centred.
MEAN_FACE_68 = np.array([
    (48.8, 66.9), (47.9, 101.8), (49.1, 119.1), (56.9, 157.1), (64.5, 172.6), (73.3, 183.8),
    (93.4, 199.9), (114.1, 209.1), (127.7, 210.0), (140.8, 208.2), (158.5, 198.0), (174.4, 181.4),
    (181.0, 170.2), (186.7, 154.8), (192.8, 117.5), (193.7, 100.5), (194.1, 66.3), (58.3, 58.2),
    (71.4, 56.6), (82.6, 53.0), (96.5, 53.5), (111.6, 55.0), (141.6, 55.3), (156.0, 53.8),
    (168.5, 53.3), (178.3, 56.7), (188.0, 57.8), (126.7, 74.7), (127.7, 92.1), (128.6, 108.7),
    (128.9, 119.0), (113.5, 130.5), (119.8, 135.0), (128.2, 134.8), (136.2, 134.7), (141.7, 130.1),
    (77.3, 79.0), (84.8, 74.6), (96.1, 73.8), (107.2, 80.7), (97.5, 83.2), (86.6, 83.0),
    (144.0, 80.7), (154.6, 73.9), (165.8, 74.6), (172.7, 78.9), (164.4, 82.8), (153.6, 83.2),
    (99.0, 163.0), (111.7, 155.3), (120.3, 153.0), (128.5, 154.1), (136.3, 152.6), (144.2, 154.5),
    (155.0, 161.7), (143.6, 171.5), (136.7, 174.3), (128.7, 175.1), (120.2, 174.7), (112.6, 172.2),
    (102.5, 161.9), (121.9, 161.5), (128.2, 161.6), (134.1, 161.2), (151.3, 160.8), (135.0, 163.4),
    (128.4, 163.8), (121.6, 163.7),
])
#: Nose base (33) and eye corners (36, 39, 42, 45): mpc001's stable points.
STABLE_POINTS = (33, 36, 39, 42, 45)
MOUTH_POINTS = slice(48, 68)
REFERENCE_MOUTH_WIDTH = float(np.linalg.norm(MEAN_FACE_68[54] - MEAN_FACE_68[48]))


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + shift mapping ``src`` points onto ``dst``.

    Umeyama's closed form (no reflection), deterministic, unlike RANSAC/LMEDS estimators.

    Args:
        src: ``[N, 2]`` points, N >= 2, not all equal.
        dst: ``[N, 2]`` target points.

    Returns:
        ``[2, 3]`` affine matrix ``M`` with ``dst ~ src @ M[:, :2].T + M[:, 2]``.

    Examples:
        >>> src = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> (similarity_transform(src, 2 * src + 5).round(6) + 0.0).tolist()
        [[2.0, 0.0, 5.0], [0.0, 2.0, 5.0]]
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var = (s ** 2).sum()
    if var < 1e-12:
        raise ValueError("similarity_transform needs at least two distinct source points")
    u, sig, vt = np.linalg.svd(d.T @ s)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / var)
    return np.column_stack([scale * rot, mu_d - scale * rot @ mu_s])


def fill_missing(
    points: np.ndarray,
    *,
    min_detected: float = 0.5,
    source: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Landmarks with the frames that have none (any NaN) filled by linear interpolation.

    Args:
        points: ``[T, K, 2]`` landmarks, NaN where the detector found nothing.
        min_detected: the fraction of frames that must have landmarks.
        source: the clip, named in the error.

    Returns:
        ``[T, K, 2]`` float64 landmarks without NaN.

    Raises:
        MediaError: fewer than ``min_detected`` of the frames have landmarks.

    Examples:
        >>> pts = np.array([[[0.0, 0.0]], [[np.nan, np.nan]], [[2.0, 4.0]]])
        >>> fill_missing(pts)[:, 0].tolist()
        [[0.0, 0.0], [1.0, 2.0], [2.0, 4.0]]
    """
    points = np.array(points, dtype=np.float64)
    valid = ~np.isnan(points).any(axis=(1, 2))
    if valid.sum() < max(1, min_detected * len(points)):
        raise MediaError(
            source if source is not None else "<frames>",
            f"facial landmarks found on {int(valid.sum())} of {len(points)} frames, fewer "
            f"than min_detected={min_detected:g} of them; is a face visible in this clip?",
        )
    if valid.all():
        return points
    times = np.flatnonzero(valid)
    flat = points.reshape(len(points), -1)
    out = np.empty_like(flat)
    for k in range(flat.shape[1]):
        out[:, k] = np.interp(np.arange(len(points)), times, flat[times, k])
    return out.reshape(points.shape)


def smooth(points: np.ndarray, window: int) -> np.ndarray:
    """Mean over a centred window of ``window`` frames along axis 0.

    The window shrinks symmetrically at the clip's ends, so the first and last frames are
    not pulled towards the inside of the clip.

    Examples:
        >>> smooth(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3).tolist()
        [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    num = len(points)
    csum = np.concatenate([np.zeros((1, *points.shape[1:])), np.cumsum(points, axis=0)])
    out = np.empty(points.shape, dtype=np.float64)
    for i in range(num):
        half = min(window // 2, i, num - 1 - i)
        out[i] = (csum[i + half + 1] - csum[i - half]) / (2 * half + 1)
    return out


def crop_matrices(
    points: np.ndarray,
    size: tuple[int, int],
    *,
    scale: float = 1.7,
    smooth_window: int = 9,
) -> np.ndarray:
    """Per-frame affine maps from the frame to the aligned mouth crop.

    Args:
        points: ``[T, 68, 2]`` landmarks without NaN (see :func:`fill_missing`).
        size: crop ``(height, width)`` in pixels.
        scale: crop width in mouth widths of the reference face.
        smooth_window: frames over which the stable points are averaged.

    Returns:
        float ``[T, 2, 3]`` matrices for ``cv2.warpAffine(frame, M, (width, height))``.
    """
    ref = MEAN_FACE_68[list(STABLE_POINTS)]
    stable = smooth(points[:, list(STABLE_POINTS)], max(1, smooth_window))
    to_ref = np.stack([similarity_transform(s, ref) for s in stable])
    mouth = points[:, MOUTH_POINTS].mean(axis=1)
    mouth_ref = np.einsum("tij,tj->ti", to_ref[:, :, :2], mouth) + to_ref[:, :, 2]
    centre = np.median(mouth_ref, axis=0)
    box_w = scale * REFERENCE_MOUTH_WIDTH
    box_h = box_w * size[0] / size[1]
    zoom = size[1] / box_w
    # reference -> crop: shift the box's corner to the origin, then zoom to the output size.
    corner = centre - [box_w / 2, box_h / 2]
    lin = zoom * to_ref[:, :, :2]
    shift = zoom * (to_ref[:, :, 2] - corner)
    return np.concatenate([lin, shift[:, :, None]], axis=2)


def warp_crops(gray: np.ndarray, matrices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cuts ``uint8 [T, h, w]`` crops out of ``[T, H, W]`` frames with per-frame affine maps."""
    import cv2

    out = np.empty((len(gray), *size), dtype=np.uint8)
    for t, matrix in enumerate(matrices):
        # Parts outside the frame repeat the edge pixels, as the unaligned crops do.
        out[t] = cv2.warpAffine(gray[t], matrix, (size[1], size[0]), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    return out


def apply_matrices(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """``[T, K, 2]`` points mapped by per-frame ``[T, 2, 3]`` affine matrices."""
    return np.einsum("tij,tkj->tki", matrices[:, :, :2], points) + matrices[:, None, :, 2]
