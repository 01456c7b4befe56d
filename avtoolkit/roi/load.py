"""``load_mouth_rois``: a video file's mouth crops (cropped and cached), or precomputed ``.npy``/``.npz`` crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avtoolkit.data.video import check_crops


def load_mouth_rois(path: Path, cache_dir: Path | None, cropper: Any) -> np.ndarray:
    """uint8 ``[T, h, w]`` mouth crops of a video file, or precomputed ones from ``.npy``/``.npz``.

    An ``.npz`` gives its ``rois`` array (what ``avtoolkit`` caches write), or its only array.
    Precomputed crops go through :func:`~avtoolkit.data.video.check_crops`.
    """
    from avtoolkit.data.media import MediaError
    from avtoolkit.roi.crop import mouth_rois

    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        return mouth_rois(path, cache_dir, cropper)
    try:
        if suffix == ".npy":
            return check_crops(np.load(path, allow_pickle=False), str(path))
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if "rois" not in names and len(names) != 1:
                raise MediaError(path, f"holds arrays {names}: mouth crops are read from one named 'rois' "
                                       "(or from the only array of the file)")
            return check_crops(data["rois" if "rois" in names else names[0]], str(path))
    except (OSError, ValueError) as exc:
        if isinstance(exc, MediaError):
            raise
        raise MediaError(path, f"not a readable NumPy {suffix} file ({exc})") from exc
