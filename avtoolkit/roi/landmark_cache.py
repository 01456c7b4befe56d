"""Detected landmarks saved beside the ROI cache, so re-cropping never re-detects."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from avtoolkit.roi.landmark_files import load_landmarks, save_landmarks


def landmarks_path(video_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str]) -> Path:
    """Where the detected landmarks of ``video_path`` live: ``<cache_dir>/landmarks/<stem>-<key>.npy``.

    The key covers the resolved path, modification time and size of the video only, not the
    crop settings, so every crop size or scale of the same clip reuses one detection.
    """
    video_path = Path(video_path)
    stat = video_path.stat()
    key = hashlib.sha1(f"{video_path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|facemesh68".encode())
    return Path(cache_dir) / "landmarks" / f"{video_path.stem}-{key.hexdigest()[:16]}.npy"


def cached_landmarks(video_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str]) -> np.ndarray:
    """``[T, 68, 2]`` landmarks of a video: read from the cache, or detected and saved there.

    Raises:
        MediaError: the video cannot be decoded.
        MissingExtraError: detection is needed and the ``landmarks`` extra is missing.
    """
    path = landmarks_path(video_path, cache_dir)
    if path.is_file():
        try:
            return load_landmarks(path)
        except Exception:  # a truncated or foreign file: detect again and overwrite it
            pass
    from avtoolkit.data.media import read_video
    from avtoolkit.roi.detector import detect_landmarks

    frames, _ = read_video(video_path, color="gray")
    points = detect_landmarks(frames)
    save_landmarks(path, points)
    return points
