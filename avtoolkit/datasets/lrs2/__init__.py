"""LRS2 (BBC, Afouras et al. 2018) in its own layout: ``main/``, ``pretrain/`` and the official split lists.

The registered ``lrs2`` dataset is :class:`avtoolkit.datasets.lrs2.datamodule.LRS2DataModule`.
"""

from avtoolkit.datasets.lrs2.layout import LRS2_HELP, read_lrs2, read_list

__all__ = ["LRS2_HELP", "read_list", "read_lrs2"]
