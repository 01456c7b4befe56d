"""``LRWClips``: a torch ``Dataset`` over prepared LRW mouth ROIs (batched by :func:`avtoolkit.data.contract.collate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from avtoolkit.data import video as T
from avtoolkit.store import NpzClipStore

from avtoolkit.datasets.lrw.prepare import clip_key
from avtoolkit.datasets.lrw.layout import LRWClip, word_boundary


class LRWClips(Dataset):
    """Prepared LRW clips of one split as batch-dict items.

    Each item has ``video`` float ``[T, 1, crop, crop]``, ``label``, ``word_boundary`` ``[T]``,
    ``id`` and ``text`` (the word).

    Args:
        clips: the clips (those whose cache file exists; see :func:`~avtoolkit.datasets.lrw.prepare.build_roi_cache`).
        cache_dir: where :func:`~avtoolkit.datasets.lrw.prepare.build_roi_cache` wrote them.
        train: random crop, flip and time masking instead of the centre crop.
        crop_size: side of the square crop.
        flip: probability of a horizontal flip in training.
        time_mask: most frames masked per clip in training (0: none).
    """

    def __init__(self, clips: Sequence[LRWClip], cache_dir: str | Path, train: bool = False,
                 crop_size: int = 88, flip: float = 0.5, time_mask: int = 10) -> None:
        self.clips = list(clips)
        self.cache_dir = Path(cache_dir)
        self.store = NpzClipStore(self.cache_dir)
        self.train = train
        self.crop_size = crop_size
        self.flip = flip
        self.time_mask = time_mask

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        try:
            arrays = self.store.read(clip_key(clip), ("rois", "duration")).arrays
        except Exception as exc:
            exc.add_note(f"(the prepared clip of {clip.video}; `avtoolkit prepare` writes it again)")
            raise
        return lrw_item(arrays, clip.label, clip.word, clip.id, self.train, self.crop_size, self.flip, self.time_mask)


def lrw_item(arrays: dict[str, np.ndarray], label: int, word: str, clip_id: str, train: bool, crop_size: int = 88,
             flip: float = 0.5, time_mask: int = 10) -> dict[str, Any]:
    """A batch-dict item from a prepared clip's ``rois`` and ``duration`` (the cache's or a shard's)."""
    rois = torch.from_numpy(np.ascontiguousarray(arrays["rois"]))
    duration = float(arrays["duration"])
    if train:
        rois = T.horizontal_flip(T.random_crop(rois, crop_size), flip)
    else:
        rois = T.center_crop(rois, crop_size)
    video = T.normalise(rois)
    if train:
        video = T.time_mask(video, time_mask)
    boundary = word_boundary(None if np.isnan(duration) else duration, len(video))
    return {"video": video, "label": label, "word_boundary": torch.from_numpy(boundary), "id": clip_id, "text": word}


class LRWShardItems:
    """``make_item`` of a :class:`~avtoolkit.datasets._stream.ShardStream` over LRW shards (picklable).

    Args:
        vocabulary: the words in label order.
        crop_size, flip, time_mask: as :class:`LRWClips`.
    """

    def __init__(self, vocabulary: Sequence[str], crop_size: int = 88, flip: float = 0.5, time_mask: int = 10) -> None:
        self.labels = {w: i for i, w in enumerate(vocabulary)}
        self.crop_size, self.flip, self.time_mask = crop_size, flip, time_mask

    def __call__(self, clip: Any, key: str, train: bool) -> dict[str, Any]:
        word = key.split("/")[0]
        return lrw_item(clip.arrays, self.labels[word], word, key.rsplit("/", 1)[-1], train, self.crop_size,
                        self.flip, self.time_mask)
