"""The noisy-audio policy of every dataset: white or babble noise at an SNR, then the model's audio input.

:class:`NoisyLogMel` adds noise to a 16 kHz waveform with probability ``noise_prob`` at
``noise_snr_db`` (a number, or an SNR drawn uniformly from ``[low, high]``), then makes what the
model's audio encoder reads (:class:`~avtoolkit.data.audio_input.AudioInput`): 40 log-mel bands,
optionally normalised per utterance, with SpecAugment; or, for an encoder that reads the
waveform (``audio_input: waveform``), the noisy samples normalised per utterance, with time masks
on the waveform in training. Noise always comes first, so a model hears the noise its input
normalisation sees. Babble sums ``babble_talkers`` other recordings of the same split, each from
a random start; a dataset says which recordings those are and how to read one through a
:class:`Talkers`. Draws come from the generator given (``None``: the global RNG, fresh every epoch
in training), always in the same order, so evaluation noise depends on (seed, item) only.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from avtoolkit.data.audio_input import AUDIO_INPUTS, AUDIO_NORMS, AudioInput, normalise_log_mel
from avtoolkit.data.augment import add_noise, babble, spec_augment, waveform_time_mask

__all__ = ["AUDIO_INPUTS", "AUDIO_NORMS", "NOISE_TYPES", "NoisyLogMel", "Talkers", "normalise_log_mel"]

#: ``data.noise_type`` values.
NOISE_TYPES = ("white", "babble", "mixed")


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"data.{name}: '{value}' is not one of {', '.join(allowed)}")


class Talkers(Protocol):
    """Where a dataset's babble comes from."""

    #: what babble needs when :meth:`others` is empty, for the error (``"other utterances in the manifest"``).
    missing: str

    def others(self, item: Any) -> Sequence[Any]:
        """The recordings babble for ``item`` may be summed from (not ``item`` itself)."""

    def load(self, other: Any) -> Tensor:
        """One of :meth:`others` as a float 16 kHz waveform."""


class NoisyLogMel:
    """Noise, the model's audio input (log-mel or waveform), normalisation and masking, as every dataset applies them.

    Args:
        noise_snr_db: noise at this SNR (a number) or at one drawn from ``[low, high]``;
            ``None`` for clean audio.
        noise_prob: the probability an item gets noise.
        noise_type: ``white``, ``babble`` (needs ``talkers``) or ``mixed``: each noisy item gets
            babble or white noise with equal chance, so a model trained on one noise type does not
            meet the other only at test time (GRID's AV model trained on babble alone fell below
            its own video-only mode in white noise at -5 dB, docs/grid.md).
        babble_talkers: recordings summed into one babble noise.
        spec: SpecAugment settings (:func:`~avtoolkit.data.augment.spec_augment`), or ``None``;
            for ``waveform`` input any setting means time masks on the waveform
            (:func:`~avtoolkit.data.augment.waveform_time_mask`, before the noise).
        audio_norm: ``log_mel`` only: ``none`` or ``utterance`` (:func:`normalise_log_mel`).
        talkers: the babble source.
        audio_input: what the model's audio encoder reads (``Encoder.audio_input``):
            ``log_mel`` or ``waveform``.

    Raises:
        ValueError: ``noise_type``, ``audio_norm`` or ``audio_input`` is not a known value.

    Examples:
        >>> audio = NoisyLogMel(noise_snr_db=[0, 10], noise_prob=1.0)
        >>> g = torch.Generator().manual_seed(0)
        >>> tuple(audio.features(np.zeros(16000, np.float32), "clip", g).shape)
        (101, 40)
        >>> raw = NoisyLogMel(noise_snr_db=10, audio_input="waveform")
        >>> tuple(raw.features(np.zeros(16000, np.float32), "clip", g).shape)
        (16000,)
    """

    def __init__(self, noise_snr_db: float | Sequence[float] | None = None, noise_prob: float = 1.0,
                 noise_type: str = "white", babble_talkers: int = 4, spec: Mapping[str, Any] | None = None,
                 audio_norm: str = "none", talkers: Talkers | None = None, audio_input: str = "log_mel") -> None:
        _check("noise_type", noise_type, NOISE_TYPES)
        _check("audio_norm", audio_norm, AUDIO_NORMS)
        _check("audio_input", audio_input, AUDIO_INPUTS)
        self.noise_snr_db = noise_snr_db
        self.noise_prob = noise_prob
        self.noise_type = noise_type
        self.babble_talkers = babble_talkers
        self.spec = spec
        self.audio_norm = audio_norm
        self.talkers = talkers
        #: the waveform -> model input step (:class:`~avtoolkit.data.audio_input.AudioInput`)
        self.input = AudioInput(audio_input, audio_norm)
        self.log_mel = self.input.log_mel

    @property
    def audio_input(self) -> str:
        """``log_mel`` or ``waveform``: the form of :meth:`features`."""
        return self.input.kind

    def noisy_wave(self, wave: np.ndarray | Tensor, item: Any, g: torch.Generator | None) -> Tensor:
        """The 16 kHz waveform :meth:`features` computes its input from: ``wave`` with this setting's noise.

        Draws from ``g`` exactly as :meth:`features` does before its log-mel (or normalisation),
        so a reference recogniser given this waveform hears what the models are scored on
        (outside training: the waveform time masks of training come before the noise).
        """
        x = torch.from_numpy(wave) if isinstance(wave, np.ndarray) else wave
        snr = self.noise_snr_db
        if snr is not None and float(torch.rand(1, generator=g)) < self.noise_prob:
            if isinstance(snr, (list, tuple)):
                low, high = float(snr[0]), float(snr[1])
                snr = low + (high - low) * float(torch.rand(1, generator=g))
            kind = self.noise_type
            if kind == "mixed":  # one more draw, only for mixed: the other types' draws are unchanged
                kind = "babble" if float(torch.rand(1, generator=g)) < 0.5 else "white"
            noise = self._babble(item, len(x), g) if kind == "babble" else None
            x = add_noise(x, float(snr), noise=noise, generator=g)
        return x

    def features(self, wave: np.ndarray | Tensor, item: Any, g: torch.Generator | None) -> Tensor:
        """The model's audio input for ``item``'s waveform: log-mel ``[T, 40]`` or the waveform ``[S]``.

        Noise first, then the input (log-mel and ``audio_norm``, or the waveform's per-utterance
        normalisation), with masking as configured: SpecAugment on the log-mel, or time masks on
        the waveform before its noise (as auto_avsr trains).
        """
        if self.input.kind == "waveform":
            x = torch.from_numpy(wave) if isinstance(wave, np.ndarray) else wave
            if self.spec is not None:
                x = waveform_time_mask(x, generator=g)
            return self.input(self.noisy_wave(x, item, g))
        # self.log_mel (the same LogMel as self.input's) is what a caller may wrap to see the noisy waveform
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
