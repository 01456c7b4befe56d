"""Prepared clips on disk: one store interface, one failure report, one rule for where caches go.

:class:`ClipStore` is what every corpus's preparation writes and its dataset reads: a clip's
arrays and metadata written atomically under a key, read back by key, keys listed with their
lengths in frames. :class:`NpzClipStore` is the backend of today's caches (one compressed
``<key>.npz`` per clip); :class:`ShardClipStore` is the second implementation of the same
interface (WebDataset-layout tar shards with an ``index.json``, for corpora at scale and for
streaming to many GPUs). :class:`PrepareReport` is the one report of a preparation run
(``prepare_report.tsv``); :func:`cache_folder` the one rule for where a cache goes. Depends only
on :mod:`avtoolkit.atomic`, NumPy and (to encode ROI frames) OpenCV.
"""

from avtoolkit.store.base import Clip, ClipStore
from avtoolkit.store.location import beside, cache_folder, user_cache
from avtoolkit.store.npz import NpzClipStore
from avtoolkit.store.report import REPORT_NAME, PrepareReport, read_failed
from avtoolkit.store.shards import ShardClipStore, parse_part

__all__ = ["REPORT_NAME", "Clip", "ClipStore", "NpzClipStore", "PrepareReport", "ShardClipStore", "beside", "cache_folder",
           "parse_part", "read_failed", "user_cache"]
