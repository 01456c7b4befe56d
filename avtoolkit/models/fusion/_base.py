"""The base class of avtoolkit's fusions: rate alignment, missing modalities, modality dropout."""

from __future__ import annotations

from typing import Mapping

from torch import Tensor

from avtoolkit.models.contract import Fusion
from avtoolkit.models.fusion._streams import align_streams, drop_modalities


class AlignedFusion(Fusion):
    """Aligns streams to ``rate`` then lets the subclass combine them frame by frame.

    Subclasses implement :meth:`combine`, which receives per modality features
    ``[B, T, D_m]`` (zero where the modality is absent or dropped) and boolean masks
    ``[B, T]``, and must give a sensible output whichever subset of masks is True.

    Args:
        input_dims: feature size per modality (injected by the assembler).
        input_rates: frame rate per modality (injected by the assembler).
        rate: the common output frame rate in frames per second.
        modality_dropout: in training, the probability that an example loses one of its
            modalities (chosen at random), so the model also works on audio or video alone.
    """

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float],
                 rate: float = 25.0, modality_dropout: float = 0.0) -> None:
        super().__init__()
        if not input_dims:
            raise ValueError("a fusion needs at least one input stream")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout is a probability in [0, 1), got {modality_dropout}")
        if rate <= 0:
            raise ValueError(f"rate must be positive frames per second, got {rate}")
        self.modalities = sorted(input_dims)
        self.input_dims = {m: int(input_dims[m]) for m in self.modalities}
        self.input_rates = {m: float(input_rates[m]) for m in self.modalities}
        self.output_rate = float(rate)
        self.modality_dropout = float(modality_dropout)

    def forward(self, streams: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        features, masks, lengths = align_streams(streams, self.modalities, self.input_dims,
                                                 self.input_rates, self.output_rate)
        if self.training and self.modality_dropout > 0:
            features, masks = drop_modalities(features, masks, self.modality_dropout)
        return self.combine(features, masks), lengths

    def combine(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:  # pragma: no cover
        raise NotImplementedError


def masked_softmax(logits: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over the True entries of ``mask``; all-False rows give zeros, not NaN.

    Examples:
        >>> import torch
        >>> masked_softmax(torch.zeros(2, 2), torch.tensor([[True, True], [False, False]])).tolist()
        [[0.5, 0.5], [0.0, 0.0]]
    """
    weights = logits.masked_fill(~mask, -1e4).softmax(dim=dim)
    return weights * mask.to(weights.dtype)
