"""Training-time augmentation for AV-ASR: SpecAugment-style masking and additive noise.

Both take an optional ``torch.Generator`` so evaluation at a fixed SNR is reproducible.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor


def add_noise(waveform: Tensor, snr_db: float, noise: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
    """Adds noise to a waveform at a signal-to-noise ratio in dB.

    The noise (white Gaussian when ``noise`` is ``None``; otherwise tiled or cut to the
    waveform's length) is scaled so that ``10 log10(P_signal / P_noise) == snr_db`` over the
    whole utterance.

    Args:
        waveform: ``[S]`` samples.
        snr_db: target SNR in dB (0 dB: noise as loud as speech).
        noise: optional noise recording ``[N]`` (babble, cafe, ...).
        generator: random source for white noise.

    Returns:
        The noisy waveform ``[S]`` (same dtype).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> speech = torch.sin(torch.arange(16000) * 0.1)
        >>> noisy = add_noise(speech, 10.0, generator=g)
        >>> p_s, p_n = speech.pow(2).mean(), (noisy - speech).pow(2).mean()
        >>> round(float(10 * torch.log10(p_s / p_n)), 3)
        10.0
    """
    if noise is None:
        noise = torch.randn(waveform.shape, generator=generator, dtype=waveform.dtype)
    else:
        if noise.numel() == 0:
            raise ValueError("the noise recording is empty")
        reps = -(-waveform.numel() // noise.numel())
        noise = noise.to(waveform.dtype).repeat(reps)[: waveform.numel()]
    p_signal = waveform.pow(2).mean()
    p_noise = noise.pow(2).mean().clamp(min=1e-12)
    scale = torch.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return waveform + scale * noise


def babble(utterances: list[Tensor], length: int) -> Tensor:
    """Babble noise: several other utterances, each at the same loudness, summed.

    Speech-shaped noise overlaps the target speech in frequency and in rhythm, so unlike
    white noise it cannot be told apart by spectrum alone; the usual AV-ASR test condition.

    Args:
        utterances: the talkers' waveforms ``[S_i]`` (tiled or cut to ``length``).
        length: samples of the result.

    Returns:
        ``[length]`` noise (scale it with :func:`add_noise`).

    Raises:
        ValueError: no utterance, or only silent ones.

    Examples:
        >>> a, b = torch.ones(4), torch.tensor([2.0, -2.0])
        >>> babble([a, b], 6).tolist()
        [2.0, 0.0, 2.0, 0.0, 2.0, 0.0]
    """
    mix = torch.zeros(length)
    used = 0
    for wave in utterances:
        rms = wave.float().pow(2).mean().sqrt()
        if wave.numel() == 0 or rms < 1e-8:
            continue
        reps = -(-length // wave.numel())
        mix += (wave.float() / rms).repeat(reps)[:length]
        used += 1
    if not used:
        raise ValueError("babble needs at least one non-silent utterance")
    return mix


#: the masks a recipe's ``spec_augment: true`` means (the keyword defaults of :func:`spec_augment`).
SPEC_AUGMENT_DEFAULTS: dict[str, float] = {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 0.05}


def spec_augment_settings(value: bool | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A dataset's ``spec_augment`` argument as :func:`spec_augment` keywords, or ``None`` for off.

    ``True`` means the defaults; a mapping overrides some of them.

    Examples:
        >>> spec_augment_settings(False) is None
        True
        >>> spec_augment_settings({"time_masks": 0})["time_masks"], spec_augment_settings(True)["freq_masks"]
        (0, 2)
    """
    if value is True:
        return dict(SPEC_AUGMENT_DEFAULTS)
    if isinstance(value, Mapping):
        return {**SPEC_AUGMENT_DEFAULTS, **value}
    return None


def spec_augment(log_mel: Tensor, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2,
                 time_width: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """SpecAugment-style masking (Park et al., 2019) without time warping.

    Masked regions take the utterance's mean log-energy rather than 0: on log-mel features
    0 is a loud value (``log(1)``), and the mean keeps the masks from looking like speech.

    Args:
        log_mel: ``[T, n_mels]`` features.
        freq_masks: number of frequency bands masked.
        freq_width: the most mel bands one frequency mask covers.
        time_masks: number of time spans masked.
        time_width: the most frames one time mask covers, as a fraction of the utterance
            (adapts to sentence length; 0.05 of 3 s is 15 frames).
        generator: random source.

    Returns:
        A masked copy ``[T, n_mels]``.

    Examples:
        >>> x = torch.zeros(100, 40)
        >>> x[:, :] = torch.arange(40.)
        >>> y = spec_augment(x, generator=torch.Generator().manual_seed(0))
        >>> y.shape == x.shape, bool((y != x).any()), bool((x == torch.arange(40.)).all())
        (True, True, True)
    """
    out = log_mel.clone()
    frames, bands = out.shape
    fill = out.mean()

    def _span(limit: int, size: int) -> tuple[int, int]:
        width = int(torch.randint(0, max(limit, 0) + 1, (1,), generator=generator))
        start = int(torch.randint(0, max(size - width, 0) + 1, (1,), generator=generator))
        return start, start + width

    for _ in range(freq_masks):
        lo, hi = _span(min(freq_width, bands), bands)
        out[:, lo:hi] = fill
    for _ in range(time_masks):
        lo, hi = _span(int(time_width * frames), frames)
        out[lo:hi, :] = fill
    return out


def waveform_time_mask(waveform: Tensor, max_width: int = 6400, per: int = 16000,
                       generator: torch.Generator | None = None) -> Tensor:
    """Zeroes random spans of a waveform: one span of up to ``max_width`` samples per ``per`` samples.

    The time masking of a waveform model's training (SpecAugment has no frequency axis to mask
    there). The defaults are auto_avsr's (spans of under 0.4 s, one per second of 16 kHz audio,
    applied before noise, so the noise fills the gaps rather than digital silence).

    Args:
        waveform: ``[S]`` samples.
        max_width: each span covers fewer than this many samples (drawn uniformly).
        per: samples per span: ``ceil(S / per)`` spans.
        generator: random source.

    Returns:
        A masked copy ``[S]``.

    Examples:
        >>> y = waveform_time_mask(torch.ones(32000), generator=torch.Generator().manual_seed(0))
        >>> y.shape, 0 < int((y == 0).sum()) < 2 * 6400
        (torch.Size([32000]), True)
    """
    out = waveform.clone()
    length = out.shape[0]
    for _ in range(-(-length // per)):
        width = int(torch.randint(0, max_width, (1,), generator=generator))
        if width >= length:
            continue
        start = int(torch.randint(0, length - width, (1,), generator=generator))
        out[start:start + width] = 0
    return out
