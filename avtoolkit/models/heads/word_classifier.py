"""Head ``word_classifier``: masked temporal mean pooling + linear over the vocabulary."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Head, lengths_to_mask
from avtoolkit.registry.kinds import HEADS


@HEADS.register("word_classifier")
class WordClassifier(Head):
    """Classifies a clip into one of ``num_classes`` words.

    Mean-pools the valid frames (padding never enters the average), then a linear layer;
    returns ``{"log_probs": [B, num_classes]}``.

    Word boundaries: LRW clips are 1.16 s windows centred on the word, and telling the model
    which frames belong to the word adds 2-3 points (Ma et al., "Training Strategies for
    Improved Lip-Reading", 2022, who concatenate the 0/1 indicator to the front-end features).
    Only the head sees the batch in this toolkit's model contract, so with
    ``use_word_boundary=True`` the indicator ``batch["word_boundary"] [B, T]`` is concatenated
    to every frame's backend features and a per-frame layer mixes them *before* pooling: the
    model can thus weight in-word frames differently, which a pooled fraction could not.

    Args:
        input_dim: features per frame (injected by the assembler).
        num_classes: vocabulary size (the engine sets it from the dataset when omitted).
        use_word_boundary: read ``word_boundary`` from the batch (required there then).
        dropout: dropout before the classifier.

    Raises:
        KeyError: built with ``use_word_boundary`` and the batch has no ``word_boundary``.

    Examples:
        >>> import torch
        >>> head = WordClassifier(input_dim=8, num_classes=3)
        >>> out = head(torch.randn(2, 5, 8), torch.tensor([5, 2]), {})
        >>> tuple(out["log_probs"].shape)
        (2, 3)
    """

    task = "classification"

    def __init__(self, input_dim: int, num_classes: int = 500, use_word_boundary: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.use_word_boundary = use_word_boundary
        self.boundary_mix = (
            nn.Sequential(nn.Linear(input_dim + 1, input_dim), nn.GELU()) if use_word_boundary else None
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(input_dim, num_classes)
        self.output_dim = num_classes

    def forward(self, x: Tensor, lengths: Tensor, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if self.boundary_mix is not None:
            if "word_boundary" not in batch:
                raise KeyError("word_classifier was built with use_word_boundary=true but the batch has no "
                               "'word_boundary'; set data.use_word_boundary: true or drop the head option")
            boundary = batch["word_boundary"].to(x.dtype)
            if boundary.shape[:2] != x.shape[:2]:
                raise ValueError(f"word_boundary has shape {tuple(boundary.shape)} but the features are "
                                 f"{tuple(x.shape[:2])} frames; the backends must keep the video frame rate")
            x = self.boundary_mix(torch.cat([x, boundary[..., None]], dim=-1))
        mask = lengths_to_mask(lengths, x.shape[1])[..., None].to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return {"log_probs": torch.log_softmax(self.classifier(self.dropout(pooled)), dim=-1)}
