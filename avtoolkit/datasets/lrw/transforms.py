"""Mouth-ROI transforms for word-level lipreading (uint8 ``[T, H, W]`` in, float out).

Training: random 88x88 crop, horizontal flip, time masking (Ma et al., "Training Strategies
for Improved Lip-Reading", 2022); evaluation: centre crop. Normalisation uses the LRW
grayscale statistics of mpc001's Lipreading_using_TCN (mean 0.421, std 0.165).
"""

from __future__ import annotations

import torch
from torch import Tensor

LRW_MEAN = 0.421
LRW_STD = 0.165


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
    """uint8 ``[T, H, W]`` -> float ``[T, 1, H, W]`` with LRW's mean and std."""
    return ((rois.float() / 255.0 - LRW_MEAN) / LRW_STD).unsqueeze(1)
