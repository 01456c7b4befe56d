"""``AVDataModule``: the base class of registered datasets.

A dataset component is a ``lightning.LightningDataModule`` subclass registered in
``avtoolkit.registry.DATASETS``; the recipe's ``data`` section names it and sets its
constructor arguments (``data: {name: lrw, root: ..., batch_size: 32}``). Its dataloaders
yield the batch dicts of :mod:`avtoolkit.data.contract`, and it exposes
``vocabulary: list[str]`` (class names in label order, or the CTC token list with the
blank first), which the engine saves into every checkpoint.
"""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader


class AVDataModule(L.LightningDataModule):
    """Base class of registered datasets.

    Subclasses fill ``vocabulary`` and implement ``_loader(split, shuffle)``; the three
    Lightning loader hooks below route to it (training shuffles, evaluation does not).
    """

    #: class names (classification) or CTC tokens, blank first; saved with checkpoints.
    vocabulary: list[str]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """The ``DataLoader`` of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _loader(split, shuffle)")

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
