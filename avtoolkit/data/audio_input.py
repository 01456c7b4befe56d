"""The audio a model reads, made from a 16 kHz waveform: log-mel frames or the normalised waveform.

Every place that builds ``batch["audio"]`` (the datasets' :class:`~avtoolkit.data.noise.NoisyLogMel`,
the ``Transcriber`` and the long-video path) turns a waveform into the model's input through one
:class:`AudioInput`, whose ``kind`` is what the model's audio encoder declares
(``Encoder.audio_input``, one of :data:`~avtoolkit.registry.kinds.AUDIO_INPUTS`):

* ``log_mel``: 40 log-mel bands, 100 frames per second (:class:`~avtoolkit.data.features.LogMel`),
  then ``audio_norm`` (``none``, or ``utterance``: each band to zero mean and unit variance);
* ``waveform``: the samples themselves, ``[S]``, each utterance normalised to zero mean and unit
  variance over all its samples (:func:`normalise_waveform`). That is what auto_avsr's data
  pipeline gives its 1-D ResNet front-end (their ``AudioTransform``: a layer norm over the whole
  utterance, ``eps=1e-8``, after any noise), so an imported ASR checkpoint reads exactly what
  their code would give it. ``audio_norm`` does not apply: this normalisation is part of the input.

Noise is always added to the waveform before either (``NoisyLogMel.noisy_wave``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from avtoolkit.registry.kinds import AUDIO_INPUTS

__all__ = ["AUDIO_INPUTS", "AUDIO_NORMS", "AudioInput", "normalise_log_mel", "normalise_waveform"]

#: ``data.audio_norm`` values (log-mel input only).
AUDIO_NORMS = ("none", "utterance")
#: the variance floor of auto_avsr's per-utterance normalisation of the waveform.
WAVEFORM_EPS = 1e-8
#: samples per 25-fps frame at 16 kHz: the shortest waveform a waveform encoder gives a frame for.
SAMPLES_PER_VIDEO_FRAME = 640


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
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


def normalise_waveform(wave: Tensor) -> Tensor:
    """One utterance's samples ``[S]`` to zero mean and unit variance: ``(x - mean) / sqrt(var + 1e-8)``.

    The variance is the biased one (over all ``S`` samples), as a layer norm over the whole
    utterance computes it; that is auto_avsr's normalisation of the waveform (train, validation
    and test alike). The loudness of a recording therefore does not matter.

    Examples:
        >>> x = normalise_waveform(0.1 * torch.randn(16000) + 0.2)
        >>> abs(float(x.mean())) < 1e-5, abs(float(x.var(unbiased=False)) - 1) < 1e-5
        (True, True)
    """
    wave = wave.float()
    return (wave - wave.mean()) / torch.sqrt(wave.var(unbiased=False) + WAVEFORM_EPS)


class AudioInput:
    """A 16 kHz waveform to what an audio encoder reads (``kind``: ``log_mel`` or ``waveform``).

    Args:
        kind: the encoder's ``audio_input``.
        audio_norm: ``log_mel`` only: ``none`` or ``utterance`` (:func:`normalise_log_mel`).

    Raises:
        ValueError: an unknown ``kind`` or ``audio_norm``.

    Examples:
        >>> wave = torch.randn(16000)
        >>> tuple(AudioInput("log_mel")(wave).shape), tuple(AudioInput("waveform")(wave).shape)
        ((101, 40), (16000,))
        >>> AudioInput("log_mel").seconds(101), AudioInput("waveform").seconds(16000)
        (1.01, 1.0)
    """

    sample_rate = 16000

    def __init__(self, kind: str = "log_mel", audio_norm: str = "none") -> None:
        from avtoolkit.data.features import LogMel

        _check("audio_input", kind, AUDIO_INPUTS)
        _check("audio_norm", audio_norm, AUDIO_NORMS)
        self.kind = kind
        self.audio_norm = audio_norm
        self.log_mel = LogMel()

    @property
    def frame_rate(self) -> float:
        """Items of the input per second: 100 log-mel frames, or 16000 samples."""
        return self.log_mel.frame_rate if self.kind == "log_mel" else float(self.sample_rate)

    @property
    def min_samples(self) -> int:
        """The fewest samples that make an input: more than half a log-mel window, or one 640-sample frame."""
        return self.log_mel.win_length // 2 + 1 if self.kind == "log_mel" else SAMPLES_PER_VIDEO_FRAME

    def seconds(self, length: int) -> float:
        """The duration of an input of ``length`` frames (log-mel) or samples (waveform)."""
        return length / self.frame_rate

    def __call__(self, wave: Tensor) -> Tensor:
        """``[T, 40]`` log-mel or the normalised ``[S]`` waveform of one utterance's samples ``[S]``."""
        if self.kind == "waveform":
            return normalise_waveform(wave)
        return normalise_log_mel(self.log_mel(wave.float()), self.audio_norm)
