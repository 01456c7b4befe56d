"""LRW (Lip Reading in the Wild): layout, word boundaries, ROI preparation, transforms, dataset."""

from avtoolkit.data.lrw.dataset import LRWClips, collate_clips
from avtoolkit.data.lrw.layout import (
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
from avtoolkit.data.lrw.prepare import PrepareReport, cache_path, prepare_lrw

__all__ = [
    "LRW_HELP", "SPLITS", "LRWClip", "LRWClips", "LRWNotFoundError", "PrepareReport", "cache_path",
    "collate_clips", "find_words", "list_clips", "prepare_lrw", "read_duration", "select_words",
    "word_boundary",
]
