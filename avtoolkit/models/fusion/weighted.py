"""``weighted``: a learnable weight per modality (softmax over those present)."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.fusion._base import AlignedFusion, masked_softmax
from avtoolkit.registry.kinds import FUSIONS


@FUSIONS.register("weighted")
class WeightedFusion(AlignedFusion):
    """Projects each stream to ``dim`` and sums them with learnable modality weights.

    The weights are a softmax of one learned logit per modality, renormalised per frame
    over the modalities present, so audio alone gets weight 1 rather than its share.

    Args:
        input_dims: feature size per modality (injected).
        input_rates: frame rate per modality (injected).
        rate: the common output frame rate.
        modality_dropout: training probability of dropping one modality per example.
        dim: the common (output) feature size.

    Examples:
        >>> f = WeightedFusion({"audio": 4, "video": 3}, {"audio": 25.0, "video": 25.0}, dim=8)
        >>> f.modality_weights()
        {'audio': 0.5, 'video': 0.5}
        >>> y, n = f({"video": (torch.ones(2, 5, 3), torch.tensor([5, 2]))})
        >>> tuple(y.shape), n.tolist()
        ((2, 5, 8), [5, 2])
    """

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float], rate: float = 25.0,
                 modality_dropout: float = 0.0, dim: int = 512) -> None:
        super().__init__(input_dims, input_rates, rate, modality_dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in self.input_dims.items()})
        self.logits = nn.Parameter(torch.zeros(len(self.modalities)))
        self.output_dim = dim

    def modality_weights(self) -> dict[str, float]:
        """The learned weights when every modality is present."""
        w = self.logits.detach().softmax(0)
        return {m: round(float(w[i]), 4) for i, m in enumerate(self.modalities)}

    def combine(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        mask = torch.stack([masks[m] for m in self.modalities], dim=-1)  # [B, T, M]
        weights = masked_softmax(self.logits.expand(mask.shape), mask)
        projected = torch.stack([self.proj[m](features[m]) for m in self.modalities], dim=-1)  # [B, T, D, M]
        return (projected * weights.unsqueeze(2)).sum(-1)
