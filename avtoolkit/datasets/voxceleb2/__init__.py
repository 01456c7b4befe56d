"""VoxCeleb2 (Chung et al. 2018) in its own layout, with transcripts from a labels file (``avtoolkit label``).

The registered ``voxceleb2`` dataset is
:class:`avtoolkit.datasets.voxceleb2.datamodule.VoxCeleb2DataModule`.
"""

from avtoolkit.datasets.voxceleb2.labels import LABELS_MAGIC, Labels, LabelsError, read_labels, write_labels
from avtoolkit.datasets.voxceleb2.layout import VOXCELEB2_HELP, find_videos, read_voxceleb2

__all__ = ["LABELS_MAGIC", "Labels", "LabelsError", "VOXCELEB2_HELP", "find_videos", "read_labels",
           "read_voxceleb2", "write_labels"]
