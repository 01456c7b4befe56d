"""The data contract: what a registered ``dataset`` component provides to the engine.

A dataset component is a ``lightning.LightningDataModule`` subclass registered in
``avtoolkit.registry.DATASETS``; the recipe's ``data`` section names it and sets its
constructor arguments (``data: {name: lrw, root: ..., batch_size: 32}``).

Its dataloaders yield **batch dicts** with these keys (only those the task needs):

=====================  =====================================  ================================
key                    shape / type                           meaning
=====================  =====================================  ================================
``video``              float ``[B, T, C, H, W]``              normalised mouth ROIs
``video_lengths``      long ``[B]``                           valid video frames
``audio``              float ``[B, T, n_mels]``               log-mel frames (100 per second)
``audio_lengths``      long ``[B]``                           valid audio frames
``word_boundary``      float ``[B, T]``                       1 inside the word (LRW), else 0
``label``              long ``[B]``                           class index (classification)
``targets``            long ``[B, S]``                        token ids, padded with 0 (CTC)
``target_lengths``     long ``[B]``                           valid target tokens (CTC)
``ids``                ``list[str]``                          example ids (file stems)
``texts``              ``list[str]``                          reference transcripts / words
=====================  =====================================  ================================

and it exposes ``vocabulary: list[str]`` (class names in label order, or the CTC token
list with the blank first), which the engine saves into every checkpoint.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader


class AVDataModule(L.LightningDataModule):
    """Base class of registered datasets.

    Subclasses fill ``vocabulary`` and implement ``_loader(split, shuffle)``; the three
    Lightning loader hooks below route to it (training shuffles, evaluation does not).
    """

    #: class names (classification) or CTC tokens, blank first; saved with checkpoints.
    vocabulary: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.vocabulary)

    def describe(self) -> dict[str, Any]:
        """Split sizes and anything else worth printing before training."""
        return {}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """The ``DataLoader`` of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _loader(split, shuffle)")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
