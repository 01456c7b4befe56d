"""``auto_avsr_mlp``: auto_avsr's audio-visual fusion, an MLP over the concatenated encoded streams.

Their AV model (``e2e_asr_conformer_av.py``, ``MLPHead``) concatenates the video encoder's and
the audio encoder's outputs frame by frame (video first), then ``Linear(2 x 768 -> 8192)``,
BatchNorm over the 8192 features, ReLU, ``Linear(8192 -> 768)``. The parameter names are
theirs under ``fusion.`` (``fc1``, ``bn1``, ``fc2``).
"""

from __future__ import annotations

from typing import Literal, Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.fusion._base import AlignedFusion
from avtoolkit.registry.kinds import FUSIONS

#: their concatenation order (``torch.cat((video_feat, audio_feat), dim=-1)``): fc1's input columns
AUTO_AVSR_ORDER = ("video", "audio")


@FUSIONS.register("auto_avsr_mlp")
class MLPFusion(AlignedFusion):
    """Concatenation of the streams (video first), then Linear, BatchNorm, ReLU, Linear (auto_avsr's fusion).

    The normalisation sees only the valid frames of a padded batch, so padding never enters
    BatchNorm's training statistics (theirs included it; evaluation is the same either way). An
    absent modality contributes zeros, as in every ``AlignedFusion``; their released model was not
    trained with modality dropout, so it expects both streams.

    Args:
        input_dims: feature size per modality (injected).
        input_rates: frame rate per modality (injected).
        hidden: width of the hidden layer (theirs: 8192).
        dim: output size (``None``: the size of the first stream, as theirs gives the video encoder's width).
        norm: ``batchnorm`` (theirs: ``bn1``) or ``layernorm`` (``norm1``) on the hidden layer.
        rate: the common output frame rate.
        modality_dropout: training probability of dropping one modality per example.

    Examples:
        >>> f = MLPFusion({"audio": 4, "video": 3}, {"audio": 25.0, "video": 25.0}, hidden=6).eval()
        >>> y, n = f({"video": (torch.ones(1, 5, 3), torch.tensor([5])), "audio": (torch.ones(1, 5, 4), torch.tensor([5]))})
        >>> tuple(y.shape), n.tolist(), f.output_dim, tuple(f.fc1.weight.shape)
        ((1, 5, 3), [5], 3, (6, 7))
    """

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float], hidden: int = 8192,
                 dim: int | None = None, norm: Literal["batchnorm", "layernorm"] = "batchnorm", rate: float = 25.0,
                 modality_dropout: float = 0.0) -> None:
        super().__init__(input_dims, input_rates, rate, modality_dropout)
        if norm not in ("batchnorm", "layernorm"):
            raise ValueError(f"auto_avsr_mlp norm must be 'batchnorm' or 'layernorm', got {norm!r}")
        # theirs first, then any other stream in name order, so fc1's columns are their layout
        self.order = [m for m in AUTO_AVSR_ORDER if m in self.input_dims] + \
            [m for m in self.modalities if m not in AUTO_AVSR_ORDER]
        total = sum(self.input_dims.values())
        self.output_dim = int(dim) if dim else self.input_dims[self.order[0]]
        self.norm = norm
        self.fc1 = nn.Linear(total, hidden)
        if norm == "batchnorm":
            self.bn1 = nn.BatchNorm1d(hidden)
        else:
            self.norm1 = nn.LayerNorm(hidden)
        self.fc2 = nn.Linear(hidden, self.output_dim)

    def combine(self, features: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        h = self.fc1(torch.cat([features[m] for m in self.order], dim=-1))
        if self.norm == "layernorm":
            h = self.norm1(h)
        else:
            valid = torch.stack([masks[m] for m in self.order]).any(dim=0)  # [B, T]
            h = h.masked_scatter(valid[..., None], self.bn1(h[valid]))
        return self.fc2(torch.relu(h))
