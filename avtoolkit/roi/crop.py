"""Grayscale mouth regions of interest (``mouth_roi``) from video frames, cached on disk.

Three ways to find the mouth (:class:`MouthCropper` ``method``):

``"fixed"``
    A fixed box given as fractions of the frame. The default, rows 115..211 and
    columns 79..175 of a 256x256 frame, is the mouth region of LRW's face-centred
    clips used by most LRW code (e.g. ``frames[:, 115:211, 79:175]``); on a frame of
    another size the same fractions are used.
``"face"``
    OpenCV's bundled frontal-face Haar cascade on a downscaled gray frame every
    ``face_every`` frames, boxes smoothed over time (see :func:`avtoolkit.roi.face.track_faces`);
    the mouth box is centred at ``mouth_center`` (fractions of the face box: half the
    width, 82% of the height down, where the mouth of the GRID speakers is) and is
    ``mouth_width`` face-widths wide.
``"landmarks"``
    68-point landmarks ``[T, 68, 2]`` (x, y), given or, when not given, detected
    (:mod:`avtoolkit.roi.detector`, the ``landmarks`` extra). With ``align=True`` (the
    default) every frame is aligned to a mean face and the crop cut around the mouth
    there (:mod:`avtoolkit.roi.mean_face`), ``landmark_scale`` reference mouth widths wide.
    With ``align=False`` the crop is centred on the mean of points 48-67 (running median
    over 5 frames) and is ``landmark_scale`` times the clip's median mouth width (corner to
    corner) wide, constant over the clip so the mouth does not zoom with landmark noise.
``"auto_avsr"``
    mpc001/auto_avsr's own crop (:mod:`avtoolkit.roi.auto_avsr`): landmarks (given or
    detected) smoothed, similarity transform to their mean face, 96x96 around the mouth;
    resized when ``size`` is not 96x96 (their models need exactly 96x96).

Crops keep the aspect ratio of ``size``; parts outside the frame repeat the edge pixels.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np

from avtoolkit.data.media import MediaError, read_video
from avtoolkit.errors import UsageError
from avtoolkit.store import NpzClipStore

Method = Literal["fixed", "face", "landmarks", "auto_avsr"]
#: (top, left, height, width) fractions: rows 115..211, cols 79..175 of LRW's 256x256 frames.
LRW_MOUTH_BOX = (115 / 256, 79 / 256, 96 / 256, 96 / 256)
_MOUTH_POINTS = slice(48, 68)


class MouthCropper:
    """Cuts grayscale mouth ROIs out of video frames.

    Args:
        size: output ``(height, width)`` in pixels.
        method: ``"fixed"``, ``"face"``, ``"landmarks"`` or ``"auto_avsr"`` (see the module docstring).
        fixed_box: ``(top, left, height, width)`` as fractions of the frame (``"fixed"``).
        face_every: run the face detector on every k-th frame (``"face"``).
        detect_width: frames are downscaled to this width for face detection.
        mouth_center: mouth centre as ``(x, y)`` fractions of the face box.
        mouth_width: crop width as a fraction of the face-box width.
        landmark_scale: crop width as a multiple of the mouth width (``"landmarks"``).
        align: align frames to the mean face before cropping (``"landmarks"``).
        smooth_window: frames over which aligned landmarks are smoothed (``align``).
        min_detected: fraction of frames that need landmarks, else the clip is an error.

    Raises:
        ValueError: an unknown method or a setting out of range.

    Examples:
        >>> frames = np.zeros((2, 256, 256, 3), np.uint8)
        >>> frames[:, 115:211, 79:175] = 255  # the LRW mouth box
        >>> rois = MouthCropper().crop(frames)
        >>> rois.shape, rois.dtype, int(rois.min())
        ((2, 96, 96), dtype('uint8'), 255)
    """

    def __init__(
        self,
        size: tuple[int, int] = (96, 96),
        method: Method = "fixed",
        *,
        fixed_box: tuple[float, float, float, float] = LRW_MOUTH_BOX,
        face_every: int = 5,
        detect_width: int = 180,
        mouth_center: tuple[float, float] = (0.5, 0.82),
        mouth_width: float = 0.65,
        landmark_scale: float = 1.7,
        align: bool = True,
        smooth_window: int = 9,
        min_detected: float = 0.5,
    ) -> None:
        if method not in ("fixed", "face", "landmarks", "auto_avsr"):
            raise ValueError(f"method must be 'fixed', 'face', 'landmarks' or 'auto_avsr', got {method!r}")
        size = (int(size[0]), int(size[1]))
        if min(size) < 1:
            raise ValueError(f"size must be positive (height, width), got {size}")
        top, left, height, width = fixed_box
        if not (0 <= top < 1 and 0 <= left < 1 and 0 < height <= 1 - top + 1e-9
                and 0 < width <= 1 - left + 1e-9):
            raise ValueError(f"fixed_box (top, left, height, width) must lie in the frame, got {fixed_box}")
        if face_every < 1 or detect_width < 32 or mouth_width <= 0 or landmark_scale <= 0:
            raise ValueError("face_every >= 1, detect_width >= 32, mouth_width > 0 and "
                             "landmark_scale > 0 are required")
        if smooth_window < 1 or not 0 < min_detected <= 1:
            raise ValueError(f"smooth_window >= 1 and 0 < min_detected <= 1 are required, got "
                             f"{smooth_window} and {min_detected}")
        self.size = size
        self.method: Method = method
        self.fixed_box = tuple(float(v) for v in fixed_box)
        self.face_every = int(face_every)
        self.detect_width = int(detect_width)
        self.mouth_center = (float(mouth_center[0]), float(mouth_center[1]))
        self.mouth_width = float(mouth_width)
        self.landmark_scale = float(landmark_scale)
        self.align = bool(align)
        self.smooth_window = int(smooth_window)
        self.min_detected = float(min_detected)

    def __repr__(self) -> str:
        return f"MouthCropper({self.cache_key()})"

    def cache_key(self) -> str:
        """The settings that change the crops, as a stable string (part of cache keys)."""
        parts = [f"size={self.size}", f"method={self.method!r}"]
        if self.method == "fixed":
            parts.append(f"fixed_box={self.fixed_box}")
        elif self.method == "face":
            parts += [f"face_every={self.face_every}", f"detect_width={self.detect_width}",
                      f"mouth_center={self.mouth_center}", f"mouth_width={self.mouth_width}"]
        elif self.method == "auto_avsr":
            parts.append(f"min_detected={self.min_detected}")
        else:
            parts.append(f"landmark_scale={self.landmark_scale}")
            if self.align:
                parts += [f"align=True, smooth_window={self.smooth_window}",
                          f"min_detected={self.min_detected}"]
        return ", ".join(parts)

    def crop(
        self,
        frames: np.ndarray,
        landmarks: np.ndarray | None = None,
        *,
        source: str | os.PathLike[str] | None = None,
    ) -> np.ndarray:
        """Mouth ROIs of a clip.

        Args:
            frames: uint8 ``[T, H, W, 3]`` RGB (as :func:`read_video` returns) or
                ``[T, H, W]`` grayscale frames.
            landmarks: ``[T, 68, 2]`` (x, y) points for ``"landmarks"`` (detected when
                ``None`` and ``align``); frames whose points are NaN are filled from their
                neighbours.
            source: the file the frames came from, named in error messages.

        Returns:
            uint8 ``[T, size_h, size_w]`` grayscale crops.

        Raises:
            MediaError: ``"face"`` found no face in any frame, or too few frames have
                landmarks (every one with ``align=False``; ``min_detected`` with ``align``).
            MissingExtraError: landmarks had to be detected and the ``landmarks`` extra
                (``pip install 'avtoolkit[landmarks]'``) is not installed.
            ValueError: frames or landmarks of the wrong shape/dtype, or ``"landmarks"``
                with ``align=False`` without landmarks.
        """
        frames = _check_frames(frames, source)
        if self.method == "fixed":
            return self._crop_fixed(frames)
        gray = _to_gray(frames)
        if self.method == "auto_avsr":
            return self._auto_avsr(gray, landmarks, source)
        if self.method == "landmarks" and self.align:
            return self._aligned(gray, landmarks, source).rois
        return _cut_all(gray, self._boxes(gray, landmarks, source), self.size)

    def _aligned(self, gray: np.ndarray, landmarks, source):
        from avtoolkit.roi.aligned_crops import aligned_crops

        return aligned_crops(gray, landmarks, self.size, scale=self.landmark_scale,
                             smooth_window=self.smooth_window, min_detected=self.min_detected,
                             source=source)

    def _auto_avsr(self, gray: np.ndarray, landmarks, source) -> np.ndarray:
        from avtoolkit.roi.aligned_crops import check_landmarks
        from avtoolkit.roi.auto_avsr import MODEL_SIZE, PATCH_SIZE, auto_avsr_crops

        if landmarks is None:
            from avtoolkit.roi.detector import detect_landmarks

            landmarks = detect_landmarks(gray)
        points = check_landmarks(landmarks, len(gray), source)
        rois = auto_avsr_crops(gray, points, min_detected=self.min_detected, source=source)
        if self.size == (PATCH_SIZE, PATCH_SIZE):
            return rois
        if self.size == (MODEL_SIZE, MODEL_SIZE):
            # their models see the centre 88x88 of the 96x96 patch (their test-time CenterCrop);
            # resizing the patch instead would shrink the mouth by 8% against what they learnt.
            edge = (PATCH_SIZE - MODEL_SIZE) // 2
            return np.ascontiguousarray(rois[:, edge:edge + MODEL_SIZE, edge:edge + MODEL_SIZE])
        return np.stack([_resize(r, self.size) for r in rois])

    def boxes(
        self,
        frames: np.ndarray,
        landmarks: np.ndarray | None = None,
        *,
        source: str | os.PathLike[str] | None = None,
    ) -> np.ndarray:
        """Where :meth:`crop` cuts: float ``[T, 4]`` boxes ``(cx, cy, w, h)`` in frame pixels.

        Useful to draw the crop on the frames when checking a new dataset. Arguments and
        errors are those of :meth:`crop`.

        Examples:
            >>> MouthCropper().boxes(np.zeros((1, 256, 256), np.uint8))
            array([[127., 163.,  96.,  96.]])
        """
        frames = _check_frames(frames, source)
        if self.method == "fixed":
            y0, y1, x0, x1 = self._fixed_bounds(*frames.shape[1:3])
            box = [(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]
            return np.tile(np.asarray(box, dtype=np.float64), (len(frames), 1))
        if self.method == "landmarks" and self.align:
            return self._aligned(_to_gray(frames), landmarks, source).boxes()
        return self._boxes(_to_gray(frames), landmarks, source)

    def _boxes(self, gray: np.ndarray, landmarks, source) -> np.ndarray:
        if self.method == "face":
            return self._face_boxes(gray, source)
        return self._landmark_boxes(landmarks, len(gray), source)

    def _fixed_bounds(self, height: int, width: int) -> tuple[int, int, int, int]:
        top, left, box_h, box_w = self.fixed_box
        y0, x0 = round(top * height), round(left * width)
        y1 = min(height, y0 + max(1, round(box_h * height)))
        x1 = min(width, x0 + max(1, round(box_w * width)))
        return y0, y1, x0, x1

    def _crop_fixed(self, frames: np.ndarray) -> np.ndarray:
        import cv2

        y0, y1, x0, x1 = self._fixed_bounds(*frames.shape[1:3])
        # Cut before converting colour: the colour conversion then touches ~14% of the pixels.
        region = np.ascontiguousarray(frames[:, y0:y1, x0:x1])
        if region.ndim == 4:
            t, h, w, _ = region.shape
            region = cv2.cvtColor(region.reshape(t * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(t, h, w)
        if region.shape[1:] == self.size:
            return region
        return np.stack([_resize(r, self.size) for r in region])

    def _face_boxes(self, gray: np.ndarray, source) -> np.ndarray:
        from avtoolkit.roi.face import track_faces

        faces = track_faces(gray, self.face_every, self.detect_width)
        if faces is None:
            raise MediaError(
                source if source is not None else "<frames>",
                f"no face found in any of the {len(gray)} frames (method='face'); "
                "use method='fixed' for pre-cropped clips or supply landmarks",
            )
        cx = faces[:, 0] + (self.mouth_center[0] - 0.5) * faces[:, 2]
        cy = faces[:, 1] + (self.mouth_center[1] - 0.5) * faces[:, 3]
        w = self.mouth_width * faces[:, 2]
        return np.stack([cx, cy, w, w * self.size[0] / self.size[1]], axis=1)

    def _landmark_boxes(self, landmarks, num_frames: int, source) -> np.ndarray:
        from avtoolkit.roi.face import running_median

        where = f" for {source}" if source is not None else ""
        if landmarks is None:
            raise ValueError(f"method='landmarks' with align=False needs landmarks [T, 68, 2]{where}")
        points = np.asarray(landmarks, dtype=np.float64)
        if points.shape != (num_frames, 68, 2):
            raise UsageError(f"landmarks must have shape [T={num_frames}, 68, 2]{where} (one row of 68 points "
                             f"per frame), got {points.shape}")
        mouth = points[:, _MOUTH_POINTS]
        valid = ~np.isnan(mouth).any(axis=(1, 2))
        if not valid.any():
            raise MediaError(source if source is not None else "<frames>",
                             "every frame's mouth landmarks are missing (NaN)")
        times = np.flatnonzero(valid)
        centre = running_median(mouth[valid].mean(axis=1), 5)
        # Nearest valid frame for gaps, as the face tracker does.
        nearest = times[np.abs(np.arange(num_frames)[:, None] - times[None]).argmin(axis=1)]
        centre = centre[np.searchsorted(times, nearest)]
        widths = mouth[valid, :, 0].max(axis=1) - mouth[valid, :, 0].min(axis=1)
        w = max(2.0, self.landmark_scale * float(np.median(widths)))
        h = w * self.size[0] / self.size[1]
        return np.column_stack([centre, np.full(num_frames, w), np.full(num_frames, h)])


def _check_frames(frames, source) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or len(frames) == 0 or (
        frames.ndim == 4 and frames.shape[-1] != 3
    ):
        raise ValueError(
            f"frames must be non-empty uint8 [T, H, W, 3] or [T, H, W], got "
            f"{frames.dtype} {tuple(frames.shape)}" + (f" from {source}" if source else "")
        )
    return frames


def _to_gray(frames: np.ndarray) -> np.ndarray:
    import cv2

    if frames.ndim == 3:
        return frames
    t, h, w, _ = frames.shape
    flat = np.ascontiguousarray(frames).reshape(t * h, w, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(t, h, w)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    shrink = image.shape[0] > size[0] or image.shape[1] > size[1]
    # INTER_AREA when shrinking avoids aliasing; bilinear when enlarging.
    return cv2.resize(image, (size[1], size[0]),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _cut_all(gray: np.ndarray, boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cuts ``(cx, cy, w, h)`` boxes out of ``[T, H, W]`` frames and resizes them to ``size``."""
    import cv2

    height, width = gray.shape[1:]
    out = np.empty((len(gray), *size), dtype=np.uint8)
    for t, (cx, cy, w, h) in enumerate(boxes):
        w, h = max(1, round(w)), max(1, round(h))
        # Keep the centre inside the frame so at least part of the box overlaps it.
        x0 = round(min(max(cx, 0), width - 1) - w / 2)
        y0 = round(min(max(cy, 0), height - 1) - h / 2)
        x1, y1 = x0 + w, y0 + h
        region = gray[t, max(0, y0):min(height, y1), max(0, x0):min(width, x1)]
        pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
        if any(pads):
            region = cv2.copyMakeBorder(region, *pads, cv2.BORDER_REPLICATE)
        out[t] = _resize(region, size)
    return out


def mouth_rois(
    video_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None,
    cropper: MouthCropper,
    *,
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """Mouth ROIs of a video file, cropped once and cached on disk.

    The cache file ``<cache_dir>/<stem>-<key>.npz`` (compressed, array ``rois``) is keyed by
    the resolved path, modification time and size of the video, the cropper's settings and
    the landmarks, so editing any of them re-crops. The folder is an
    :class:`~avtoolkit.store.NpzClipStore`, which writes each file whole or not at all: parallel
    workers and interrupted runs never leave a half-written cache; an unreadable cache file is re-made.

    Args:
        video_path: the video file.
        cache_dir: where cached crops live (created if needed); ``None`` disables caching.
        cropper: how to crop.
        landmarks: ``[T, 68, 2]`` points for ``method="landmarks"``.

    Returns:
        uint8 ``[T, h, w]`` grayscale mouth ROIs.

    Raises:
        MediaError: the video cannot be decoded, or no face/mouth is found in it.
    """
    video_path = Path(video_path)
    if cache_dir is None:
        return _crop_file(video_path, cropper, landmarks)
    stat = video_path.stat() if video_path.exists() else None
    if stat is None:
        raise MediaError(video_path, "file does not exist")
    key = hashlib.sha1(
        f"{video_path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{cropper.cache_key()}".encode()
    )
    if landmarks is not None:
        key.update(np.ascontiguousarray(landmarks, dtype=np.float64).tobytes())
    cache_dir = Path(cache_dir)
    if landmarks is None and cropper.method in ("landmarks", "auto_avsr"):
        from avtoolkit.roi.landmark_cache import cached_landmarks

        landmarks = cached_landmarks(video_path, cache_dir)
    store = NpzClipStore(cache_dir)
    cached = f"{video_path.stem}-{key.hexdigest()[:16]}"
    if store.contains(cached):
        try:
            return store.read(cached, ("rois",)).arrays["rois"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # truncated or foreign file: crop again and overwrite it
    rois = _crop_file(video_path, cropper, landmarks)
    try:
        store.write(cached, {"rois": rois})
    except PermissionError as exc:  # a shared read-only cache: use the crops without keeping them
        import logging

        logging.getLogger(__name__).warning("%s: cannot keep the mouth crops there (%s); cropping on each read",
                                            cache_dir, exc.strerror or exc)
    return rois


def _crop_file(video_path: Path, cropper: MouthCropper, landmarks) -> np.ndarray:
    # Gray decoding: every method works on luma, and it is a third of the data to copy.
    frames, _ = read_video(video_path, color="gray")
    if landmarks is not None and cropper.method in ("landmarks", "auto_avsr") and len(landmarks) != len(frames):
        raise ValueError(
            f"{video_path}: {len(frames)} frames decoded but landmarks have {len(landmarks)}"
        )
    return cropper.crop(frames, landmarks, source=video_path)
