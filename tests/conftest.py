"""Shared test fixtures.

``tiny_components`` registers five tiny components (``t_video``, ``t_audio``,
``t_concat``, ``t_linear``, ``t_classifier``) in the global registries for one test and
removes them afterwards, so recipe, assembler and CLI tests run real code paths without
depending on the size or arguments of the real components.

``tests/fixtures/`` holds helper modules tests import by name (``synthetic_lrw``, ``tiny_models``).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, Literal, Mapping

import pytest
import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Backend, Encoder, Fusion, Head, lengths_to_mask
from avtoolkit.registry import registry_for

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))  # `import synthetic_lrw`


class TinyVideo(Encoder):
    """Tiny video encoder: mean of each frame's pixels per channel, then a linear layer."""

    modality = "video"

    def __init__(self, width: int = 8, in_channels: int = 1, pool: Literal["mean", "max"] = "mean") -> None:
        super().__init__()
        self.output_dim = width
        self.pool = pool
        self.proj = nn.Linear(in_channels, width)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        pooled = x.mean(dim=(3, 4)) if self.pool == "mean" else x.amax(dim=(3, 4))
        return self.proj(pooled), lengths


class TinyAudio(Encoder):
    """Tiny audio encoder: 100 log-mel frames/s averaged 4 by 4 (25 frames/s), then a linear layer."""

    modality = "audio"
    input_rate = 100.0
    time_stride = 4

    def __init__(self, n_mels: int = 4, width: int = 5) -> None:
        super().__init__()
        self.output_dim = width
        self.proj = nn.Linear(n_mels, width)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        pooled = nn.functional.avg_pool1d(x.transpose(1, 2), 4, ceil_mode=True).transpose(1, 2)
        return self.proj(pooled), self.output_lengths(lengths)


class TinyConcat(Fusion):
    """Tiny fusion: concatenates the streams (sorted by modality) over their common frames."""

    def __init__(self, input_dims: Mapping[str, int], input_rates: Mapping[str, float], rate: float = 25.0) -> None:
        super().__init__()
        self.input_dims = dict(input_dims)
        self.input_rates = dict(input_rates)
        self.output_dim = sum(input_dims.values())
        self.output_rate = rate

    def forward(self, streams: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        time = min(x.shape[1] for x, _ in streams.values())
        xs = [streams[m][0][:, :time] for m in sorted(streams)]
        lengths = torch.stack([le for _, le in streams.values()]).amin(0).clamp(max=time)
        return torch.cat(xs, dim=-1), lengths


class TinyLinear(Backend):
    """Tiny backend: one linear layer per frame."""

    def __init__(self, input_dim: int, hidden: int = 6) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = hidden
        self.proj = nn.Linear(input_dim, hidden)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.proj(x), lengths


class TinyClassifier(Head):
    """Tiny head: masked mean over time, linear, log-softmax."""

    task = "classification"

    def __init__(self, input_dim: int, num_classes: int) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.proj = nn.Linear(input_dim, num_classes)

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1)
        return {"log_probs": self.proj(pooled).log_softmax(-1)}


TINY = {
    ("encoder", "t_video"): TinyVideo,
    ("encoder", "t_audio"): TinyAudio,
    ("fusion", "t_concat"): TinyConcat,
    ("backend", "t_linear"): TinyLinear,
    ("head", "t_classifier"): TinyClassifier,
}


@pytest.fixture
def tiny_components() -> Iterator[dict[str, type]]:
    """The tiny components, registered in the global registries for one test."""
    with contextlib.ExitStack() as stack:
        for (kind, name), cls in TINY.items():
            stack.enter_context(registry_for(kind).temporary(name, cls))
        yield {name: cls for (_, name), cls in TINY.items()}
