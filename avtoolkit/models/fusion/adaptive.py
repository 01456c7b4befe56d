"""``adaptive``: a per-frame gate, computed from both streams, decides how much each one counts."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.fusion._base import AlignedFusion, masked_softmax
from avtoolkit.registry.kinds import FUSIONS


@FUSIONS.register("adaptive")
class AdaptiveFusion(AlignedFusion):
    """Projects each stream to ``dim`` and mixes them with a learned per-frame gate.

    A small MLP reads every projected stream plus the presence flags of each frame and
    outputs one logit per modality; a softmax over the modalities present gives the mix.
    When the audio is noisy the gate can lean on the lips frame by frame, which a fixed
    weight (``weighted``) cannot.

    Args:
        input_dims: feature size per modality (injected).
        input_rates: frame rate per modality (injected).
        rate: the common output frame rate.
        modality_dropout: training probability of dropping one modality per example.
        dim: the common (output) feature size.
        gate_hidden: hidden units of the gate MLP.

    Examples:
        >>> f = AdaptiveFusion({"audio": 4, "video": 3}, {"audio": 25.0, "video": 25.0}, dim=8).eval()
        >>> y, n = f({"audio": (torch.ones(1, 6, 4), torch.tensor([6])),
        ...           "video": (torch.ones(1, 5, 3), torch.tensor([5]))})
        >>> tuple(y.shape), n.tolist(), tuple(f.gate_weights.shape)
        ((1, 6, 8), [6], (1, 6, 2))
        >>> float(f.gate_weights[0, 5, 0])  # the last frame has audio only
        1.0
    """

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float], rate: float = 25.0,
                 modality_dropout: float = 0.0, dim: int = 512, gate_hidden: int = 128) -> None:
        super().__init__(input_dims, input_rates, rate, modality_dropout)
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in self.input_dims.items()})
        n = len(self.modalities)
        self.gate = nn.Sequential(nn.Linear(n * dim + n, gate_hidden), nn.ReLU(inplace=True),
                                  nn.Linear(gate_hidden, n))
        self.output_dim = dim
        #: the last forward's mix ``[B, T, M]`` (modalities in sorted order), for inspection.
        self.gate_weights: Tensor | None = None

    def combine(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        mask = torch.stack([masks[m] for m in self.modalities], dim=-1)  # [B, T, M]
        # A stream's projection bias must not leak in where it is absent.
        projected = [self.proj[m](features[m]) * masks[m].unsqueeze(-1).to(features[m].dtype)
                     for m in self.modalities]
        gate_in = torch.cat([*projected, mask.to(projected[0].dtype)], dim=-1)
        weights = masked_softmax(self.gate(gate_in), mask)
        self.gate_weights = weights.detach()
        return (torch.stack(projected, dim=-1) * weights.unsqueeze(2)).sum(-1)
