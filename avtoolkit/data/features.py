"""Log-mel filterbank features for the audio encoders.

The settings (defaults of :class:`LogMel`) are the usual ASR front end:

* 16 kHz mono input, 25 ms Hann window (``win_length = n_fft = 400`` samples),
  10 ms hop (160 samples): 100 frames per second;
* ``center=True`` with reflect padding, so ``S`` samples give ``1 + S // 160`` frames
  and frame ``t`` is centred on sample ``160 * t`` (aligned with video frame
  ``t * fps / 100``);
* power spectrum (``power=2``), 40 triangular mel filters (HTK mel scale, no filter
  normalisation) from 0 Hz to Nyquist, computed by ``torchaudio.transforms.MelSpectrogram``;
* natural log with a floor: ``log(max(mel, 1e-6))``, so digital silence gives
  ``log(1e-6) ~ -13.8`` instead of ``-inf``.

No mean/variance normalisation happens here; the encoders normalise (BatchNorm).
"""

from __future__ import annotations

import torch
from torch import nn

#: floor under the mel energies before the log: silence maps to log(1e-6) ~ -13.8.
LOG_FLOOR = 1e-6


class LogMel(nn.Module):
    """Waveform to log-mel frames, 100 per second with the default 10 ms hop.

    Args:
        sample_rate: input sample rate in Hz.
        n_mels: mel filters (feature dimension).
        win_ms: analysis window in milliseconds (also the FFT size).
        hop_ms: hop between frames in milliseconds.

    Examples:
        >>> log_mel = LogMel()
        >>> log_mel(torch.zeros(16000)).shape
        torch.Size([101, 40])
        >>> log_mel(torch.zeros(2, 8000)).shape, log_mel.num_frames(8000)
        (torch.Size([2, 51, 40]), 51)
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 40,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
    ) -> None:
        super().__init__()
        import torchaudio

        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.win_length = round(sample_rate * win_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        if self.win_length < 2 or self.hop_length < 1:
            raise ValueError(
                f"window {win_ms} ms / hop {hop_ms} ms are too short at {sample_rate} Hz"
            )
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=self.win_length,
            win_length=self.win_length,
            hop_length=self.hop_length,
            n_mels=n_mels,
            center=True,
            pad_mode="reflect",
            power=2.0,
        )

    @property
    def output_dim(self) -> int:
        """Feature dimension (``n_mels``)."""
        return self.n_mels

    @property
    def frame_rate(self) -> float:
        """Frames per second (100 with the default 10 ms hop at 16 kHz)."""
        return self.sample_rate / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples (``1 + num_samples // hop``).

        Examples:
            >>> LogMel().num_frames(48000)
            301
        """
        return 1 + int(num_samples) // self.hop_length

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Computes log-mel frames.

        Args:
            waveform: float samples ``[S]`` or ``[B, S]`` at ``sample_rate``.

        Returns:
            ``[T, n_mels]`` or ``[B, T, n_mels]`` with ``T = num_frames(S)``.

        Raises:
            ValueError: the input is not 1-D or 2-D, or is shorter than the reflect padding
                (half a window) needs.
        """
        if waveform.dim() not in (1, 2):
            raise ValueError(f"waveform must be [S] or [B, S], got shape {tuple(waveform.shape)}")
        if waveform.shape[-1] <= self.win_length // 2:
            raise ValueError(
                f"waveform of {waveform.shape[-1]} samples is too short for a "
                f"{self.win_length}-sample window (needs more than {self.win_length // 2})"
            )
        mel = self.mel(waveform.float())  # [..., n_mels, T]
        return torch.log(torch.clamp(mel, min=LOG_FLOOR)).transpose(-1, -2)
