"""Aligned mouth crops of a clip from its landmarks (given, or detected when absent)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from avtoolkit.errors import UsageError
from avtoolkit.roi.mean_face import apply_matrices, crop_matrices, fill_missing, warp_crops


@dataclass(frozen=True)
class AlignedCrops:
    """What :func:`aligned_crops` made, kept together so a contact sheet can draw it.

    Attributes:
        rois: uint8 ``[T, h, w]`` mouth crops.
        matrices: float ``[T, 2, 3]`` affine maps from frame pixels to crop pixels.
        landmarks: float ``[T, 68, 2]`` frame-pixel landmarks as detected or given (NaN kept).
        filled: ``[T, 68, 2]`` landmarks after gap filling (what the crops were cut from).
    """

    rois: np.ndarray
    matrices: np.ndarray
    landmarks: np.ndarray
    filled: np.ndarray

    def crop_landmarks(self) -> np.ndarray:
        """The filled landmarks in crop pixels, ``[T, 68, 2]``."""
        return apply_matrices(self.filled, self.matrices)

    def boxes(self) -> np.ndarray:
        """``[T, 4]`` boxes ``(cx, cy, w, h)`` in frame pixels (the crop's centre and extent)."""
        h, w = self.rois.shape[1:]
        lin = self.matrices[:, :, :2]
        inv = np.linalg.inv(lin)
        centre = np.einsum("tij,tj->ti", inv, np.array([w / 2, h / 2]) - self.matrices[:, :, 2])
        zoom = np.sqrt(np.abs(np.linalg.det(lin)))
        return np.column_stack([centre, w / zoom, h / zoom])


def check_landmarks(landmarks, num_frames: int, source) -> np.ndarray:
    """``landmarks`` as float ``[T, 68, 2]``; a UsageError (a ValueError) naming ``source`` otherwise."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (num_frames, 68, 2):
        where = f" for {source}" if source is not None else ""
        raise UsageError(f"landmarks must have shape [T={num_frames}, 68, 2]{where} (one row of 68 points per "
                         f"frame), got {points.shape}")
    return points


def aligned_crops(
    gray: np.ndarray,
    landmarks: np.ndarray | None,
    size: tuple[int, int],
    *,
    scale: float = 1.7,
    smooth_window: int = 9,
    min_detected: float = 0.5,
    source: str | os.PathLike[str] | None = None,
) -> AlignedCrops:
    """Mouth crops aligned to the mean face (see :mod:`avtoolkit.roi.mean_face`).

    Args:
        gray: uint8 ``[T, H, W]`` frames.
        landmarks: ``[T, 68, 2]`` points (NaN = missing); ``None`` detects them
            (:func:`avtoolkit.roi.detector.detect_landmarks`, the ``landmarks`` extra).
        size: crop ``(height, width)``.
        scale: crop width in reference mouth widths.
        smooth_window: frames over which the stable points are averaged.
        min_detected: fraction of frames that must have landmarks.
        source: the clip, named in errors.

    Raises:
        MediaError: too few frames have landmarks.
        MissingExtraError: detection was needed and the ``landmarks`` extra is missing.
    """
    if landmarks is None:
        from avtoolkit.roi.detector import detect_landmarks

        landmarks = detect_landmarks(gray)
    points = check_landmarks(landmarks, len(gray), source)
    filled = fill_missing(points, min_detected=min_detected, source=source)
    matrices = crop_matrices(filled, size, scale=scale, smooth_window=smooth_window)
    return AlignedCrops(warp_crops(gray, matrices, size), matrices, points, filled)
