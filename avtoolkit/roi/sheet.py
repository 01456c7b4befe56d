"""Contact sheets: a clip's mouth crops in a grid with the landmarks drawn, to check by eye."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avtoolkit.atomic import atomic_write

#: Colours (BGR-free: the sheet is RGB) for the point groups a user checks first.
_MOUTH, _STABLE, _OTHER = (255, 60, 60), (60, 220, 60), (80, 160, 255)


def contact_sheet(
    rois: np.ndarray,
    crop_landmarks: np.ndarray | None = None,
    *,
    frames: int = 16,
    columns: int = 8,
    zoom: int = 2,
    title: str | None = None,
) -> np.ndarray:
    """An RGB image of ``frames`` evenly spaced crops, landmarks drawn on them.

    Args:
        rois: uint8 ``[T, h, w]`` crops.
        crop_landmarks: ``[T, K, 2]`` points in crop pixels (68-point layout: the mouth,
            48-67, in red; the stable points 33, 36, 39, 42, 45 in green; the rest blue).
        frames: how many crops to show (all when the clip is shorter).
        columns: crops per row.
        zoom: each crop is enlarged by this factor so the points are visible.
        title: a line of text above the grid (the clip's name, say).

    Returns:
        uint8 ``[H, W, 3]`` RGB image.

    Examples:
        >>> contact_sheet(np.zeros((4, 8, 8), np.uint8), columns=2, zoom=1).shape
        (16, 16, 3)
    """
    import cv2

    from avtoolkit.roi.mean_face import STABLE_POINTS

    picks = np.unique(np.linspace(0, len(rois) - 1, min(frames, len(rois))).round().astype(int))
    h, w = rois.shape[1] * zoom, rois.shape[2] * zoom
    rows = -(-len(picks) // columns)
    cols = min(columns, len(picks))
    top = 22 if title else 0
    sheet = np.full((top + rows * h, cols * w, 3), 255, np.uint8)
    for i, t in enumerate(picks):
        tile = cv2.resize(rois[t], (w, h), interpolation=cv2.INTER_NEAREST)
        tile = np.repeat(tile[..., None], 3, axis=-1)
        if crop_landmarks is not None:
            for k, (x, y) in enumerate(crop_landmarks[t]):
                if not np.isfinite(x + y):
                    continue
                colour = _MOUTH if 48 <= k < 68 else _STABLE if k in STABLE_POINTS else _OTHER
                cv2.circle(tile, (int(round(x * zoom)), int(round(y * zoom))), max(1, zoom), colour, -1)
        cv2.putText(tile, str(t), (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        r, c = divmod(i, columns)
        sheet[top + r * h: top + (r + 1) * h, c * w: (c + 1) * w] = tile
    if title:
        cv2.putText(sheet, title[:120], (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return sheet


def clip_contact_sheet(
    video_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (96, 96),
    landmarks: np.ndarray | None = None,
    frames: int = 16,
    **crop_options,
) -> Path:
    """Detects (or takes) a clip's landmarks, crops aligned mouths and writes their sheet as PNG.

    Args:
        video_path: the clip.
        out_path: the PNG to write.
        size: crop ``(height, width)``.
        landmarks: ``[T, 68, 2]`` points; detected when ``None``.
        frames: crops shown.
        **crop_options: ``scale``, ``smooth_window``, ``min_detected`` of
            :func:`avtoolkit.roi.aligned_crops.aligned_crops`.

    Returns:
        ``out_path``.
    """
    import cv2

    from avtoolkit.data.media import read_video
    from avtoolkit.roi.aligned_crops import aligned_crops

    gray, _ = read_video(video_path, color="gray")
    result = aligned_crops(gray, landmarks, size, source=video_path, **crop_options)
    found = int((~np.isnan(result.landmarks).any(axis=(1, 2))).sum())
    title = f"{Path(video_path).name}: landmarks on {found}/{len(gray)} frames, crop {size[1]}x{size[0]}"
    sheet = contact_sheet(result.rois, result.crop_landmarks(), frames=frames, title=title)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not _write_png(out_path, sheet):
        raise OSError(f"could not write {out_path}")
    return out_path


def write_sheets(
    videos: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    cropper,
    landmarks: list[np.ndarray | None] | None = None,
) -> list[Path]:
    """One contact sheet per video, as a prepare run leaves beside its report.

    Args:
        videos: the clips to show (a prepare run passes its first few).
        out_dir: where ``<video stem>.png`` files go.
        cropper: the :class:`~avtoolkit.roi.crop.MouthCropper` the run crops with; aligned
            ``landmarks`` crops get their landmarks drawn, other methods show the crops alone.
        landmarks: per video, the landmarks the run used (``None``: detected).

    Returns:
        The sheets written; a clip that cannot be cropped is left out, never an error: the
        sheets are a check by eye and the run itself already reports failed clips.
    """
    import cv2

    from avtoolkit.data.media import read_video
    from avtoolkit.errors import AvtoolkitError
    from avtoolkit.roi.aligned_crops import aligned_crops

    out_dir = Path(out_dir)
    written = []
    for k, video in enumerate(videos):
        points = landmarks[k] if landmarks is not None else None
        try:
            gray, _ = read_video(video, color="gray")
            if cropper.method == "landmarks" and cropper.align:
                result = aligned_crops(gray, points, cropper.size, scale=cropper.landmark_scale,
                                       smooth_window=cropper.smooth_window,
                                       min_detected=cropper.min_detected, source=video)
                rois, drawn = result.rois, result.crop_landmarks()
            else:
                rois, drawn = cropper.crop(gray, points, source=video), None
        except (AvtoolkitError, ValueError):
            continue
        sheet = contact_sheet(rois, drawn, title=f"{Path(video).name}: {cropper.method} crops")
        path = out_dir / f"{Path(video).stem}.png"
        out_dir.mkdir(parents=True, exist_ok=True)
        if _write_png(path, sheet):
            written.append(path)
    return written


def _write_png(path: Path, rgb: np.ndarray) -> bool:
    """Encodes ``rgb`` as PNG and writes it with :func:`~avtoolkit.atomic.atomic_write`: two
    processes preparing one cache never leave a half-written picture."""
    import cv2

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        return False
    with atomic_write(path) as fh:
        fh.write(encoded.tobytes())
    return True
