"""Landmark files: ``.npy`` arrays written by avtoolkit and mpc001's per-clip ``.pkl`` lists.

``.npy``: float ``[T, 68, 2]`` (x, y) in frame pixels, NaN for frames without a face.

``.pkl`` (mpc001's Lipreading_using_TCN landmarks for LRW): a pickled list with one entry
per frame, ``None`` where no face was found, else a ``[68, 2]`` array. Pickles can run code
when loaded, so they are read with an unpickler that only rebuilds numpy arrays and plain
containers; anything else in the file is refused.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from avtoolkit.atomic import atomic_write
from avtoolkit.data.media import MediaError

_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("builtins", "list"), ("builtins", "dict"), ("builtins", "tuple"),
    ("collections", "OrderedDict"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a landmark file")
        return super().find_class(module, name)


def load_landmarks(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads a landmark file (``.npy`` or mpc001 ``.pkl``) as float ``[T, 68, 2]``, NaN = missing.

    Raises:
        MediaError: the file cannot be read or does not hold 68-point landmarks per frame.

    Examples:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clip.pkl"
        >>> _ = path.write_bytes(pickle.dumps([None, np.ones((68, 2))]))
        >>> load_landmarks(path)[:, 0].tolist()
        [[nan, nan], [1.0, 1.0]]
    """
    path = Path(path)
    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as fh:
                frames = _ArrayUnpickler(fh).load()
            points = _from_frame_list(frames)
        else:
            points = np.load(path, allow_pickle=False).astype(np.float64)
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as exc:
        raise MediaError(path, f"cannot read landmarks: {exc}") from exc
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise MediaError(path, f"landmarks must be [T, 68, 2], got {tuple(points.shape)}")
    if np.isinf(points).any():
        raise MediaError(path, "holds infinite coordinates; a missing point is NaN")
    if len(points) == 0 or np.isnan(points).all():
        raise MediaError(path, f"holds no landmarks: {'no frames' if len(points) == 0 else 'every point is NaN'}")
    return points


def _from_frame_list(frames) -> np.ndarray:
    if not isinstance(frames, (list, tuple)):
        raise ValueError(f"expected a list with one entry per frame, got {type(frames).__name__}")
    out = np.full((len(frames), 68, 2), np.nan)
    for t, entry in enumerate(frames):
        if isinstance(entry, dict):  # some releases keep {"facial_landmarks": [68, 2], ...}
            entry = entry.get("facial_landmarks")
        if entry is not None:
            out[t] = np.asarray(entry, dtype=np.float64).reshape(68, 2)
    return out


def save_landmarks(path: str | os.PathLike[str], points: np.ndarray) -> None:
    """Writes ``[T, 68, 2]`` landmarks as ``.npy`` atomically (parallel workers never see half a file)."""
    with atomic_write(path) as fh:
        np.save(fh, np.asarray(points, dtype=np.float32))
