"""Shared by every fusion: frame-rate alignment, missing modalities, modality dropout.

A fusion sees the streams present in the batch, ``{modality: (x [B, T, D], lengths [B])}``.
:func:`align_streams` brings each to the fusion's rate and one common length and returns,
per modality, features zeroed outside the valid frames and a ``[B, T]`` presence mask.
A modality absent from the dict is all zeros with an all-False mask, which is exactly
what a stream of length 0 gives: that is how an exported ONNX graph (whose inputs are
fixed) runs on one modality.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from avtoolkit.models.contract import lengths_to_mask


def resample_time(x: Tensor, lengths: Tensor, rate_in: float, rate_out: float) -> tuple[Tensor, Tensor]:
    """Brings ``x [B, T, D]`` from ``rate_in`` to ``rate_out`` frames per second.

    Integer ratios pool (downsampling, averaging each window) or repeat frames
    (upsampling); other ratios interpolate linearly. Lengths round up so a partial last
    frame is kept.

    Examples:
        >>> x = torch.arange(8.).view(1, 8, 1)
        >>> y, n = resample_time(x, torch.tensor([7]), 100.0, 25.0)
        >>> y.flatten().tolist(), n.tolist()
        ([1.5, 5.5], [2])
        >>> y, n = resample_time(x[:, :2], torch.tensor([2]), 25.0, 50.0)
        >>> y.flatten().tolist(), n.tolist()
        ([0.0, 0.0, 1.0, 1.0], [4])
    """
    if math.isclose(rate_in, rate_out):
        return x, lengths
    ratio = rate_in / rate_out
    new_lengths = torch.ceil(lengths.to(torch.float64) / ratio).to(lengths.dtype)
    if ratio > 1 and math.isclose(ratio, round(ratio)):
        k = int(round(ratio))
        y = F.avg_pool1d(x.transpose(1, 2), kernel_size=k, stride=k, ceil_mode=True).transpose(1, 2)
    elif ratio < 1 and math.isclose(1 / ratio, round(1 / ratio)):
        y = x.repeat_interleave(int(round(1 / ratio)), dim=1)
    else:
        size = max(1, math.ceil(x.shape[1] / ratio))
        y = F.interpolate(x.transpose(1, 2), size=size, mode="linear", align_corners=False).transpose(1, 2)
    return y, new_lengths


def align_streams(streams: Mapping[str, tuple[Tensor, Tensor]], modalities: list[str],
                  input_dims: Mapping[str, int], input_rates: Mapping[str, float],
                  rate: float) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
    """Aligns the present streams and fills in absent ones.

    Args:
        streams: ``{modality: (x [B, T, D], lengths [B])}`` for the modalities present.
        modalities: every modality the fusion was built for, in a fixed order.
        input_dims: feature size of each modality (to build zeros for an absent one).
        input_rates: frame rate of each modality's stream.
        rate: the output frame rate.

    Returns:
        ``(features, masks, lengths)``: per modality ``[B, T, D]`` features (zero outside
        its valid frames) and ``[B, T]`` masks at ``rate``, and the fused lengths (the
        longest present stream of each example).

    Raises:
        ValueError: no known modality is present, or an unknown one is.
    """
    unknown = sorted(set(streams) - set(modalities))
    if unknown:
        raise ValueError(f"fusion got streams {unknown} it was not built for; it fuses {modalities}")
    if not streams:
        raise ValueError(f"fusion needs at least one of {modalities}")
    aligned = {m: resample_time(x, n, input_rates[m], rate) for m, (x, n) in streams.items()}
    ref = next(iter(aligned.values()))[0]
    batch, frames = ref.shape[0], max(x.shape[1] for x, _ in aligned.values())
    features: dict[str, Tensor] = {}
    masks: dict[str, Tensor] = {}
    lengths = torch.zeros(batch, dtype=torch.long, device=ref.device)
    for m in modalities:
        if m in aligned:
            x, n = aligned[m]
            x = F.pad(x, (0, 0, 0, frames - x.shape[1]))
            n = n.clamp(max=frames)
            mask = lengths_to_mask(n, frames)
            features[m] = x * mask.unsqueeze(-1).to(x.dtype)
            masks[m] = mask
            lengths = torch.maximum(lengths, n.to(torch.long))
        else:
            features[m] = ref.new_zeros(batch, frames, input_dims[m])
            masks[m] = torch.zeros(batch, frames, dtype=torch.bool, device=ref.device)
    return features, masks, lengths


def drop_modalities(features: dict[str, Tensor], masks: dict[str, Tensor],
                    p: float) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Training-time modality dropout: each example loses one modality with probability ``p``.

    The dropped modality is chosen uniformly among the modalities the example has, and an
    example never loses its last one, so the model learns to transcribe from any single
    stream. Dropped streams look exactly like absent ones (zeros, False mask).

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> f = {"audio": torch.ones(1000, 2, 1), "video": torch.ones(1000, 2, 1)}
        >>> m = {k: torch.ones(1000, 2, dtype=torch.bool) for k in f}
        >>> f2, m2 = drop_modalities(f, m, 0.5)
        >>> both = (m2["audio"][:, 0] & m2["video"][:, 0]).float().mean().item()
        >>> 0.4 < both < 0.6, bool((m2["audio"] | m2["video"]).all())
        (True, True)
    """
    names = list(features)
    if p <= 0 or len(names) < 2:
        return features, masks
    ref = masks[names[0]]
    has = torch.stack([masks[m].any(dim=1) for m in names], dim=1)  # [B, M]
    eligible = has.sum(dim=1) >= 2
    drop = eligible & (torch.rand(ref.shape[0], device=ref.device) < p)
    # Pick uniformly among the modalities each example has: random scores, absent ones never win.
    scores = torch.rand(has.shape, device=ref.device).masked_fill(~has, -1.0)
    victim = scores.argmax(dim=1)
    features, masks = dict(features), dict(masks)
    for i, m in enumerate(names):
        keep = ~(drop & (victim == i))  # [B]
        masks[m] = masks[m] & keep[:, None]
        features[m] = features[m] * keep[:, None, None].to(features[m].dtype)
    return features, masks
