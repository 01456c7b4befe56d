"""LRS3 (TED, Afouras et al. 2018) in its own layout: ``pretrain/``, ``trainval/``, ``test/``.

The registered ``lrs3`` dataset is :class:`avtoolkit.datasets.lrs3.datamodule.LRS3DataModule`.
"""

from avtoolkit.datasets.lrs3.layout import LRS3_HELP, read_lrs3

__all__ = ["LRS3_HELP", "read_lrs3"]
