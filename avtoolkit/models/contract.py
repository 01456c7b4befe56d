"""The model contract: what every component consumes, produces and reports.

Every recipe model is ``encoders -> [fusion] -> backends -> head``:

* an **encoder** turns one modality into ``[batch, time, dim]`` plus lengths
  (video input ``[batch, time, channels, height, width]``; audio input ``[batch, time, n_mels]``
  log-mel frames, or ``[batch, samples]`` of 16 kHz waveform for an encoder whose
  ``audio_input`` is ``"waveform"``);
* a **fusion** turns several such streams into one, at one frame rate;
* a **backend** maps a sequence to a sequence (``[B, T, D_in] -> [B, T, D_out]``);
* a **head** turns a sequence into the task's output (``log_probs``).

Each part reports ``output_dim`` (and encoders and fusions ``output_rate`` in frames per
second) so the assembler passes ``input_dim`` / ``input_dims`` / ``input_rates`` to the next
part: a recipe never repeats a number the code can derive.
"""

from __future__ import annotations

from typing import ClassVar, Mapping

import torch
from torch import Tensor, nn

from avtoolkit.registry.describe import INJECTED_ARGS  # defined torch-free, for validation

__all__ = ["INJECTED_ARGS", "Backend", "Encoder", "Fusion", "Head", "lengths_to_mask"]


class Encoder(nn.Module):
    """Turns one modality into a sequence ``[batch, time, output_dim]`` with lengths.

    Subclasses set ``modality`` (the batch key they read: ``"video"`` or ``"audio"``),
    ``output_dim``, ``input_rate`` (frames per second of their input) and ``time_stride``
    (input frames per output frame). ``modality`` has no default: registering an encoder
    that does not set it is an error.

    An audio encoder also declares the form of ``batch["audio"]`` it reads, ``audio_input``
    (one of :data:`~avtoolkit.registry.kinds.AUDIO_INPUTS`): ``"log_mel"`` (the default: 40
    log-mel bands, 100 frames per second) or ``"waveform"`` (the 16 kHz samples, normalised per
    utterance to zero mean and unit variance, as auto_avsr's front-end reads them). Whoever
    builds batches reads it from the class, never from a recipe key: the datasets (the
    ``data.audio_input`` that ``resolve_run`` fills in from the model section) and the
    ``Transcriber`` (:func:`avtoolkit.recipe.audio_input.model_audio_input`).

    Examples:
        >>> from avtoolkit.registry.kinds import ENCODERS
        >>> ENCODERS.get("audio_cnn").audio_input, ENCODERS.get("auto_avsr_audio").audio_input
        ('log_mel', 'waveform')
    """

    modality: ClassVar[str]
    audio_input: ClassVar[str] = "log_mel"
    output_dim: int
    input_rate: float = 25.0
    time_stride: int = 1

    @property
    def output_rate(self) -> float:
        """Output frames per second."""
        return self.input_rate / self.time_stride

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid output frames for ``lengths`` valid input frames (ceil division by stride)."""
        return torch.div(lengths + self.time_stride - 1, self.time_stride, rounding_mode="floor")

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError


class Fusion(nn.Module):
    """Combines streams ``{modality: (x, lengths)}`` into one sequence.

    Constructors receive ``input_dims`` and ``input_rates`` (both keyed by modality) from
    the assembler. ``forward`` gets only the streams present in the batch: a fusion that
    supports a missing modality handles an absent key.
    """

    output_dim: int
    output_rate: float

    def forward(self, streams: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError


class Backend(nn.Module):
    """Sequence to sequence: ``(x [B, T, input_dim], lengths) -> (y [B, T', output_dim], lengths')``."""

    output_dim: int

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        raise NotImplementedError


class Head(nn.Module):
    """Turns a sequence into the task output.

    ``task`` names the registered objective (:mod:`avtoolkit.objectives`) whose loss,
    metrics and decoding apply: ``"classification"`` (``log_probs [B, classes]``) or
    ``"ctc"`` (``log_probs [B, T, vocab]`` plus ``lengths``).
    """

    task: ClassVar[str] = "classification"

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """Boolean mask ``[B, T]``, True on valid frames.

    Examples:
        >>> lengths_to_mask(torch.tensor([1, 3])).tolist()
        [[True, False, False], [True, True, True]]
    """
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
