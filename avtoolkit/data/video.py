"""Clip tensors: mouth crops checked, cropped, flipped, masked and normalised for the models.

uint8 grayscale ``[T, H, W]`` crops in, float ``[T, 1, H, W]`` out. Every corpus and the
inference front ends share these, so a clip is normalised one way everywhere.

Word-level training: random 88x88 crop, horizontal flip, time masking (Ma et al., "Training
Strategies for Improved Lip-Reading", 2022); evaluation: centre crop. Normalisation uses the LRW
grayscale statistics of mpc001's Lipreading_using_TCN (mean 0.421, std 0.165).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

__all__ = ["VIDEO_MEAN", "VIDEO_STD", "center_crop", "check_crops", "horizontal_flip", "normalise",
           "random_crop", "time_mask", "video_tensor"]

#: grayscale mouth-crop normalisation (mean/std of LRW's mouth ROIs, as in LRW lipreading code).
VIDEO_MEAN, VIDEO_STD = 0.421, 0.165

log = logging.getLogger(__name__)


def check_crops(rois: np.ndarray, name: str) -> np.ndarray:
    """Precomputed mouth crops as uint8 ``[T, h, w]``, converted from other dtypes when that is safe.

    Integers within 0..255 are cast; floats in ``[0, 1]`` are scaled to 0..255 and floats in
    ``[0, 255]`` rounded, each with a warning (a float array used as uint8 would be a constant
    input). Anything else is an error naming ``name``.

    Examples:
        >>> check_crops(np.full((2, 4, 4), 0.5, np.float32), "a.npy")[0, 0, 0]
        np.uint8(128)
        >>> check_crops(np.zeros((2, 16)), "a.npy")
        Traceback (most recent call last):
        ...
        avtoolkit.data.media.MediaError: a.npy: mouth crops must be grayscale [frames, height, width], got shape (2, 16)
    """
    from avtoolkit.data.media import MediaError

    if rois.ndim == 4 and rois.shape[-1] == 1:
        rois = rois[..., 0]
    if rois.ndim != 3 or 0 in rois.shape:
        raise MediaError(name, f"mouth crops must be grayscale [frames, height, width], got shape {rois.shape}")
    if rois.dtype == np.uint8:
        return rois
    kind = rois.dtype.kind
    if kind not in "iuf":
        raise MediaError(name, f"mouth crops must be uint8 grey levels, got {rois.dtype}")
    low, high = float(rois.min()), float(rois.max())
    if kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        raise MediaError(name, "mouth crops hold NaN or infinite values")
    if kind in "iu":
        if low < 0 or high > 255:
            raise MediaError(name, f"{rois.dtype} mouth crops range {low:g}..{high:g}, outside 0..255 grey levels; "
                                   "save them as uint8")
        return rois.astype(np.uint8)
    if low >= 0 and high <= 1:
        log.warning("%s: mouth crops are %s in [0, 1]: scaled to 0..255 grey levels (save uint8 to skip this)",
                    name, rois.dtype)
        return np.rint(rois * 255).astype(np.uint8)
    if low >= 0 and high <= 255:
        log.warning("%s: mouth crops are %s in [0, 255]: rounded to uint8 grey levels", name, rois.dtype)
        return np.rint(rois).astype(np.uint8)
    raise MediaError(name, f"{rois.dtype} mouth crops range {low:g}..{high:g}: expected grey levels in [0, 1] "
                           "or [0, 255]; save them as uint8")


def video_tensor(rois: np.ndarray, size: tuple[int, int]) -> Tensor:
    """Normalised float ``[T, 1, H, W]`` from uint8 ``[T, h, w]`` crops (resized if needed)."""
    x = torch.from_numpy(np.ascontiguousarray(rois)).float().div_(255.0).unsqueeze(1)
    if tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return (x - VIDEO_MEAN) / VIDEO_STD


def center_crop(rois: Tensor, size: int) -> Tensor:
    """Centre ``size x size`` crop of ``[T, H, W]``.

    Examples:
        >>> center_crop(torch.zeros(2, 96, 96), 88).shape
        torch.Size([2, 88, 88])
    """
    h, w = rois.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop size {size} is larger than the ROIs ({h}x{w}); prepare bigger ROIs")
    top, left = (h - size) // 2, (w - size) // 2
    return rois[..., top:top + size, left:left + size]


def random_crop(rois: Tensor, size: int, generator: torch.Generator | None = None) -> Tensor:
    """The same random ``size x size`` window for every frame of a clip."""
    h, w = rois.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop size {size} is larger than the ROIs ({h}x{w}); prepare bigger ROIs")
    top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
    return rois[..., top:top + size, left:left + size]


def horizontal_flip(rois: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Mirrors the whole clip left-right with probability ``p``."""
    if p > 0 and float(torch.rand((), generator=generator)) < p:
        return rois.flip(-1)
    return rois


def time_mask(video: Tensor, max_frames: int, generator: torch.Generator | None = None) -> Tensor:
    """Replaces up to ``max_frames`` consecutive frames by the clip's mean frame.

    Ma et al. (2022) mask up to 0.4 s per second of video; 10 frames suit LRW's 29-frame clips.

    Examples:
        >>> x = torch.arange(6.).reshape(6, 1, 1)
        >>> masked = time_mask(x, 3, torch.Generator().manual_seed(0))
        >>> int((masked != x).sum()) <= 3
        True
    """
    t = video.shape[0]
    if max_frames <= 0 or t < 2:
        return video
    length = int(torch.randint(0, min(max_frames, t - 1) + 1, (1,), generator=generator))
    if length == 0:
        return video
    start = int(torch.randint(0, t - length + 1, (1,), generator=generator))
    out = video.clone()
    out[start:start + length] = video.mean(0, keepdim=True)
    return out


def normalise(rois: Tensor) -> Tensor:
    """uint8 ``[T, H, W]`` -> float ``[T, 1, H, W]`` with :data:`VIDEO_MEAN` and :data:`VIDEO_STD`."""
    # one scale and one shift in place (the same values up to float rounding, 4e-7): four
    # allocating passes took 0.56 ms of a 29x88x88 clip on one core, this takes 0.06 ms, and a
    # loader worker's whole item (decode, crop, normalise) about 2 ms (benchmarks/shards.py)
    return rois.float().mul_(1.0 / (255.0 * VIDEO_STD)).sub_(VIDEO_MEAN / VIDEO_STD).unsqueeze(1)
