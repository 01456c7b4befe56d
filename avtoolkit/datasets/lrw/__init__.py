"""LRW (Lip Reading in the Wild): layout, word boundaries, ROI cache, clips dataset.

The registered ``lrw`` dataset is :class:`avtoolkit.datasets.lrw.datamodule.LRWDataModule`
(imported on its own, so that reading the layout does not import Lightning).
"""

from avtoolkit.datasets.lrw.prepare import build_roi_cache, cache_path, clip_key
from avtoolkit.datasets.lrw.dataset import LRWClips
from avtoolkit.datasets.lrw.layout import (
    LRW_HELP,
    SPLITS,
    LRWClip,
    LRWNotFoundError,
    find_words,
    list_clips,
    read_duration,
    select_words,
    word_boundary,
)

__all__ = [
    "LRW_HELP", "SPLITS", "LRWClip", "LRWClips", "LRWNotFoundError", "build_roi_cache", "cache_path",
    "clip_key", "find_words", "list_clips", "read_duration", "select_words",
    "word_boundary",
]
