"""The noisy-log-mel policy of every dataset: white or babble noise at an SNR, then log-mel features.

:class:`NoisyLogMel` adds noise to a 16 kHz waveform with probability ``noise_prob`` at
``noise_snr_db`` (a number, or an SNR drawn uniformly from ``[low, high]``), computes 40 log-mel
bands, optionally normalises each utterance and applies SpecAugment. Babble sums
``babble_talkers`` other recordings of the same split, each from a random start; a dataset says
which recordings those are and how to read one through a :class:`Talkers`. Draws come from the
generator given (``None``: the global RNG, fresh every epoch in training), always in the same
order, so evaluation noise depends on (seed, item) only.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from avtoolkit.data.augment import add_noise, babble, spec_augment

__all__ = ["AUDIO_NORMS", "NOISE_TYPES", "NoisyLogMel", "Talkers", "normalise_log_mel"]

#: ``data.noise_type`` values.
NOISE_TYPES = ("white", "babble")
#: ``data.audio_norm`` values.
AUDIO_NORMS = ("none", "utterance")


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"data.{name}: '{value}' is not one of {', '.join(allowed)}")


def normalise_log_mel(feats: Tensor, how: str) -> Tensor:
    """Per-utterance mean/variance normalisation of log-mel ``[T, n_mels]`` (``how="utterance"``).

    Examples:
        >>> x = normalise_log_mel(torch.randn(50, 4) * 3 + 7, "utterance")
        >>> bool(x.mean(0).abs().max() < 1e-5), bool((x.std(0) - 1).abs().max() < 1e-3)
        (True, True)
    """
    if how == "none":
        return feats
    _check("audio_norm", how, AUDIO_NORMS)
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


class Talkers(Protocol):
    """Where a dataset's babble comes from."""

    #: what babble needs when :meth:`others` is empty, for the error (``"other utterances in the manifest"``).
    missing: str

    def others(self, item: Any) -> Sequence[Any]:
        """The recordings babble for ``item`` may be summed from (not ``item`` itself)."""

    def load(self, other: Any) -> Tensor:
        """One of :meth:`others` as a float 16 kHz waveform."""


class NoisyLogMel:
    """Noise, log-mel, normalisation and SpecAugment, as every dataset applies them.

    Args:
        noise_snr_db: noise at this SNR (a number) or at one drawn from ``[low, high]``;
            ``None`` for clean audio.
        noise_prob: the probability an item gets noise.
        noise_type: ``white`` or ``babble`` (needs ``talkers``).
        babble_talkers: recordings summed into one babble noise.
        spec: SpecAugment settings (:func:`~avtoolkit.data.augment.spec_augment`), or ``None``.
        audio_norm: ``none`` or ``utterance`` (:func:`normalise_log_mel`).
        talkers: the babble source.

    Raises:
        ValueError: ``noise_type`` or ``audio_norm`` is not a known value.

    Examples:
        >>> audio = NoisyLogMel(noise_snr_db=[0, 10], noise_prob=1.0)
        >>> g = torch.Generator().manual_seed(0)
        >>> tuple(audio.features(np.zeros(16000, np.float32), "clip", g).shape)
        (101, 40)
    """

    def __init__(self, noise_snr_db: float | Sequence[float] | None = None, noise_prob: float = 1.0,
                 noise_type: str = "white", babble_talkers: int = 4, spec: Mapping[str, Any] | None = None,
                 audio_norm: str = "none", talkers: Talkers | None = None) -> None:
        from avtoolkit.data.features import LogMel

        _check("noise_type", noise_type, NOISE_TYPES)
        _check("audio_norm", audio_norm, AUDIO_NORMS)
        self.noise_snr_db = noise_snr_db
        self.noise_prob = noise_prob
        self.noise_type = noise_type
        self.babble_talkers = babble_talkers
        self.spec = spec
        self.audio_norm = audio_norm
        self.talkers = talkers
        self.log_mel = LogMel()

    def noisy_wave(self, wave: np.ndarray | Tensor, item: Any, g: torch.Generator | None) -> Tensor:
        """The 16 kHz waveform :meth:`features` computes its log-mel from: ``wave`` with this setting's noise.

        Draws from ``g`` exactly as :meth:`features` does before its log-mel, so a reference
        recogniser given this waveform hears what the models are scored on.
        """
        x = torch.from_numpy(wave) if isinstance(wave, np.ndarray) else wave
        snr = self.noise_snr_db
        if snr is not None and float(torch.rand(1, generator=g)) < self.noise_prob:
            if isinstance(snr, (list, tuple)):
                low, high = float(snr[0]), float(snr[1])
                snr = low + (high - low) * float(torch.rand(1, generator=g))
            noise = self._babble(item, len(x), g) if self.noise_type == "babble" else None
            x = add_noise(x, float(snr), noise=noise, generator=g)
        return x

    def features(self, wave: np.ndarray | Tensor, item: Any, g: torch.Generator | None) -> Tensor:
        """Log-mel ``[T, 40]`` of ``item``'s waveform, with noise, normalisation and masking as configured."""
        feats = normalise_log_mel(self.log_mel(self.noisy_wave(wave, item, g)), self.audio_norm)
        if self.spec is not None:
            feats = spec_augment(feats, generator=g, **self.spec)
        return feats

    def _babble(self, item: Any, length: int, g: torch.Generator | None) -> Tensor:
        others = self.talkers.others(item) if self.talkers is not None else ()
        if not others:
            missing = self.talkers.missing if self.talkers is not None else "a source of other recordings"
            raise ValueError(f"data.noise_type: babble needs {missing}")
        picks = torch.randint(len(others), (self.babble_talkers,), generator=g).tolist()
        talkers = [self.talkers.load(others[i]) for i in picks]
        # A random start in each talker, so babble is not every sentence's silent lead-in at once.
        talkers = [t.roll(int(torch.randint(len(t), (1,), generator=g))) for t in talkers]
        return babble(talkers, length)
