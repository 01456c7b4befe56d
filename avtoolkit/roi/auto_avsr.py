"""auto_avsr's mouth crops (``crop_method: auto_avsr``), for models trained on their preprocessing.

mpc001/auto_avsr's released models (LRS3/VoxCeleb2) were trained on crops made by its
``preparation/detectors/retinaface/video_process.py``; a model sees other crops as a shifted,
rescaled mouth and loses accuracy. This module makes the same crops from avtoolkit's own
68-point landmarks (:mod:`avtoolkit.roi.detector`, no download), in their order:

1. frames without landmarks (NaN) are filled linearly between the nearest detected frames
   and held constant before the first and after the last;
2. each frame's landmarks are averaged over a centred window of up to 13 frames (6 each side,
   fewer near the clip's ends), then shifted back so their centroid is the frame's own;
3. the least-squares similarity from 8 stable points (nose bridge 28, nose tip 33, eye corners
   36, 39, 42, 45, mouth corners 48, 54) to the same points of their 256x256 mean face
   (``cv2.estimateAffinePartial2D``, LMedS, OpenCV's fixed seed: deterministic) maps the
   grayscale frame into 256x256 (bilinear, black outside the frame);
4. a 96x96 patch centred on the mean of the mapped mouth points 48-67 (rounded to whole
   pixels) is cut from it.

For the model, :func:`auto_avsr_model_input` then takes the centre 88x88, scales to [0, 1]
and normalises with their mean 0.421 and std 0.165. Frames are expected at 25 fps
(``read_video`` resamples other rates, see docs/preprocessing.md).

:data:`STABLE_REFERENCE` holds the 8 points of auto_avsr's ``20words_mean_face.npy`` (commit
182b628 of github.com/mpc001/auto_avsr, Apache-2.0) as numbers; the file itself is not copied.
"""

from __future__ import annotations

import os

import numpy as np

from avtoolkit.data.media import MediaError

#: Landmark indices (iBUG 68) whose mean-face positions the similarity transform matches.
STABLE_POINTS = (28, 33, 36, 39, 42, 45, 48, 54)
#: Those points in auto_avsr's 256x256 mean face (rows of ``20words_mean_face.npy``).
STABLE_REFERENCE = np.array([
    (128.48854473, 106.92459506), (128.87017961, 137.30253356), (92.52245553, 94.36876014),
    (112.77241724, 94.9436087), (145.52511509, 94.53499862), (166.67710071, 93.56562296),
    (107.16760614, 157.19606764), (152.19284005, 156.98711116),
])
ALIGNED_SIZE = 256
PATCH_SIZE = 96
MODEL_SIZE = 88
MEAN, STD = 0.421, 0.165
#: frames each side of a frame that its landmarks are averaged over.
SMOOTH_MARGIN = 6
#: auto_avsr skips clips shorter than its 12-frame smoothing window.
MIN_FRAMES = 12


def interpolate_gaps(landmarks: np.ndarray, source: object = None) -> np.ndarray:
    """Fills NaN frames of ``[T, 68, 2]`` linearly between detected ones, held at the ends.

    Examples:
        >>> pts = np.full((3, 68, 2), np.nan); pts[0], pts[2] = 0.0, 2.0
        >>> float(interpolate_gaps(pts)[1, 0, 0])
        1.0
    """
    points = np.array(landmarks, dtype=np.float64)
    found = np.flatnonzero(~np.isnan(points).any(axis=(1, 2)))
    if len(found) == 0:
        raise MediaError(source if source is not None else "<frames>",
                         f"no facial landmarks in any of the {len(points)} frames (crop_method auto_avsr)")
    frames = np.arange(len(points))
    flat = points[found].reshape(len(found), -1)
    filled = np.stack([np.interp(frames, found, flat[:, k]) for k in range(flat.shape[1])], axis=1)
    return filled.reshape(points.shape)


def smooth_landmarks(points: np.ndarray) -> np.ndarray:
    """Centred moving mean over up to ``2 * SMOOTH_MARGIN + 1`` frames, centroid kept per frame."""
    total = len(points)
    out = np.empty_like(points)
    for t in range(total):
        margin = min(SMOOTH_MARGIN, t, total - 1 - t)
        window = points[t - margin:t + margin + 1].mean(axis=0)
        out[t] = window + (points[t].mean(axis=0) - window.mean(axis=0))
    return out


def auto_avsr_crops(gray: np.ndarray, landmarks: np.ndarray, *, min_detected: float = 0.5,
                    source: str | os.PathLike[str] | None = None) -> np.ndarray:
    """auto_avsr's 96x96 mouth crops of a clip.

    Args:
        gray: uint8 ``[T, H, W]`` grayscale frames (25 fps).
        landmarks: ``[T, 68, 2]`` (x, y) frame-pixel points, NaN where none were found.
        min_detected: fraction of frames that need landmarks, else the clip is an error.
        source: the clip, named in errors.

    Returns:
        uint8 ``[T, 96, 96]``.

    Raises:
        MediaError: too few frames with landmarks, a clip under 12 frames, or a mouth that
            lands too far from the aligned frame's centre (their "too much bias" check).
    """
    import cv2

    name = source if source is not None else "<frames>"
    if len(gray) < MIN_FRAMES:
        raise MediaError(name, f"{len(gray)} frames: crop_method auto_avsr needs at least {MIN_FRAMES} "
                               "(the smoothing window its models were trained with)")
    found = ~np.isnan(np.asarray(landmarks, dtype=np.float64)).any(axis=(1, 2))
    if found.mean() < min_detected:
        raise MediaError(name, f"facial landmarks found on {int(found.sum())} of {len(found)} frames "
                               f"(min_detected {min_detected})")
    smoothed = smooth_landmarks(interpolate_gaps(landmarks, source))
    half = PATCH_SIZE // 2
    out = np.empty((len(gray), PATCH_SIZE, PATCH_SIZE), np.uint8)
    for t, frame in enumerate(gray):
        matrix = cv2.estimateAffinePartial2D(smoothed[t, list(STABLE_POINTS)], STABLE_REFERENCE,
                                             method=cv2.LMEDS)[0]
        if matrix is None:
            raise MediaError(name, f"frame {t}: degenerate landmarks, no similarity transform")
        aligned = cv2.warpAffine(frame, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mouth = smoothed[t, 48:68] @ matrix[:, :2].T + matrix[:, 2]
        cx, cy = mouth.mean(axis=0)
        # Their guard: a mouth this far off centre means the landmarks are wrong.
        if abs(cy - ALIGNED_SIZE / 2) > half + 5 or abs(cx - ALIGNED_SIZE / 2) > half + 5:
            raise MediaError(name, f"frame {t}: the aligned mouth is off the face's centre; the landmarks "
                                   "look wrong (check them with `avtoolkit crops`)")
        y0, x0 = (int(round(float(np.clip(c - half, 0, ALIGNED_SIZE)))) for c in (cy, cx))
        y1, x1 = (int(round(float(np.clip(c + half, 0, ALIGNED_SIZE)))) for c in (cy, cx))
        patch = aligned[y0:y1, x0:x1]
        out[t] = 0  # a patch clipped at the aligned frame's edge is padded with black
        out[t, :patch.shape[0], :patch.shape[1]] = patch[:PATCH_SIZE, :PATCH_SIZE]
    return out


def auto_avsr_model_input(rois: np.ndarray) -> np.ndarray:
    """Their test-time transform: centre 88x88, /255, ``(x - 0.421) / 0.165``; float32 ``[T, 1, 88, 88]``.

    Examples:
        >>> x = auto_avsr_model_input(np.full((2, 96, 96), 255, np.uint8))
        >>> x.shape, round(float(x[0, 0, 0, 0]), 4)
        ((2, 1, 88, 88), 3.5091)
    """
    rois = np.asarray(rois)
    top = (rois.shape[1] - MODEL_SIZE) // 2
    left = (rois.shape[2] - MODEL_SIZE) // 2
    centre = rois[:, top:top + MODEL_SIZE, left:left + MODEL_SIZE].astype(np.float32) / 255.0
    return ((centre - MEAN) / STD)[:, None]
