"""``concat``: the simple fusion, frame-wise concatenation of the aligned streams."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.fusion._base import AlignedFusion
from avtoolkit.registry.kinds import FUSIONS


@FUSIONS.register("concat")
class ConcatFusion(AlignedFusion):
    """Concatenates the aligned streams frame by frame, optionally projected to ``dim``.

    An absent modality contributes zeros, so a model trained with ``modality_dropout``
    has learned what a zero block means.

    Args:
        input_dims: feature size per modality (injected).
        input_rates: frame rate per modality (injected).
        rate: the common output frame rate.
        modality_dropout: training probability of dropping one modality per example.
        dim: project the concatenation to this size (``None``: keep the sum of the sizes).

    Examples:
        >>> f = ConcatFusion({"audio": 4, "video": 3}, {"audio": 25.0, "video": 25.0})
        >>> y, n = f({"audio": (torch.ones(1, 5, 4), torch.tensor([5]))})
        >>> tuple(y.shape), n.tolist(), f.output_dim
        ((1, 5, 7), [5], 7)
    """

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float], rate: float = 25.0,
                 modality_dropout: float = 0.0, dim: int | None = None) -> None:
        super().__init__(input_dims, input_rates, rate, modality_dropout)
        total = sum(self.input_dims.values())
        self.proj = nn.Linear(total, dim) if dim else nn.Identity()
        self.output_dim = int(dim) if dim else total

    def combine(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        return self.proj(torch.cat([features[m] for m in self.modalities], dim=-1))
