"""Dataset ``lrw``: Lip Reading in the Wild word clips as a LightningDataModule."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Literal

from torch.utils.data import DataLoader

from avtoolkit.data.contract import collate
from avtoolkit.datasets._stream import StreamedTraining
from avtoolkit.datasets.base import AVDataModule
from avtoolkit.datasets.lrw.prepare import build_roi_cache, clip_key, shard_folder
from avtoolkit.datasets.lrw.dataset import LRWClips, LRWShardItems
from avtoolkit.datasets.lrw.layout import LRW_HELP, SPLITS, LRWNotFoundError, find_words, list_clips, select_words
from avtoolkit.registry.kinds import DATASETS
from avtoolkit.store import REPORT_NAME, NpzClipStore, PrepareReport, beside, cache_folder


def default_cache_dir(root: str | Path, method: str = "fixed") -> Path:
    """``<root>_mouth96_<method>`` beside the LRW folder (:func:`~avtoolkit.store.beside`).

    Examples:
        >>> default_cache_dir("/data/lipread_mp4").as_posix()
        '/data/lipread_mp4_mouth96_fixed'
    """
    return beside(root, f"mouth96_{method}")


@DATASETS.register("lrw")
class LRWDataModule(StreamedTraining, AVDataModule):
    """LRW word clips (500 words, 29 frames at 25 fps) from prepared 96x96 mouth ROIs.

    ``prepare_data`` (run once, on the first process only) converts the mp4s that are not
    cached yet (see :func:`~avtoolkit.datasets.lrw.prepare.build_roi_cache`); clips that failed are listed in
    ``<cache_dir>/prepare_report.tsv`` and left out with a warning that names the report.
    The vocabulary is the sorted word list, so label indices are stable across machines.

    Args:
        root: the ``lipread_mp4`` folder (required: LRW is licensed, not downloadable here).
        words: use the first N words in sorted order (default: all 500).
        words_list: use these words instead.
        batch_size: clips per batch.
        workers: dataloader worker processes.
        crop_size: side of the square crop fed to the model (88 in the literature).
        cache_dir: prepared ROIs (default ``<root>_mouth96_<crop_method>``).
        crop_method: mouth cropping when preparing: ``fixed``, ``face``, ``landmarks`` or ``auto_avsr``.
        landmarks_dir: 68-point ``.npy`` landmarks in the LRW layout (``crop_method: landmarks``).
        use_word_boundary: put ``word_boundary`` in the batches (the head must ask for it too).
        flip: horizontal-flip probability in training.
        time_mask: most frames masked per training clip (0: off).
        prepare_workers: processes for preparing (default: every core).
        store_format: ``npz`` (one cached file per clip, read by index) or ``shards`` (tar
            shards in ``<cache_dir>/shards/<split>``, streamed: each sample once per epoch
            across every rank and loader worker, and the position inside an epoch saved in
            mid-epoch checkpoints, ``trainer.checkpoint_every_n_steps``; docs/distributed.md).
        max_frames: ``shards``: batches of at most this many frames in total (bucketed by
            length) instead of ``batch_size`` clips.
        shuffle_buffer: ``shards``: shuffle-buffer size in samples (also the bucketing window).
        shard_size: ``shards``: samples per shard when preparing.
        seed: ``shards``: the seed of the per-epoch shard, buffer and augmentation draws.
        shards_dir: ``shards``: the folder (or ``s3://``/``gs://``/``https://`` URL, read
            through fsspec) holding the ``train``/``val``/``test`` shard folders; default
            ``<cache_dir>/shards``, where preparation writes them.

    Raises:
        LRWNotFoundError: ``root`` is not an LRW tree (says where LRW comes from).
    """

    def __init__(self, root: str | None = None, words: int | None = None, words_list: list[str] | None = None,
                 batch_size: int = 32, workers: int = 4, crop_size: int = 88, cache_dir: str | None = None,
                 crop_method: Literal["fixed", "face", "landmarks", "auto_avsr"] = "fixed", landmarks_dir: str | None = None, use_word_boundary: bool = False,
                 flip: float = 0.5, time_mask: int = 10, prepare_workers: int | None = None,
                 store_format: Literal["npz", "shards"] = "npz", max_frames: int | None = None,
                 shuffle_buffer: int = 256, shard_size: int = 1000, seed: int = 0,
                 shards_dir: str | None = None) -> None:
        super().__init__()
        if root is None:
            raise LRWNotFoundError(f"data.root is not set. {LRW_HELP}")
        self.root = Path(root).expanduser()
        self.vocabulary = select_words(find_words(self.root), words, words_list)
        self.words, self.words_list = words, words_list
        self.batch_size = batch_size
        self.workers = workers
        self.crop_size = crop_size
        self.crop_method = crop_method
        self.landmarks_dir = landmarks_dir
        self.cache_dir = cache_folder(cache_dir, default_cache_dir(self.root, crop_method))
        self.use_word_boundary = use_word_boundary
        self.flip = flip
        self.time_mask = time_mask
        self.prepare_workers = prepare_workers
        if store_format not in ("npz", "shards"):
            raise ValueError(f"data.store_format: '{store_format}' is not one of npz, shards")
        self.store_format = store_format
        self.streamed = store_format == "shards"
        self.max_frames, self.shuffle_buffer, self.shard_size, self.seed = max_frames, shuffle_buffer, shard_size, seed
        self.shards_dir = shards_dir
        self.splits: dict[str, LRWClips] = {}

    def prepare_data(self) -> None:
        report = build_roi_cache(self.root, self.cache_dir, words_list=self.vocabulary, method=self.crop_method,
                                 landmarks_dir=self.landmarks_dir, workers=self.prepare_workers,
                                 store_format=self.store_format, shard_size=self.shard_size)
        if report.prepared or report.failed:
            print(f"LRW: {report}")

    def setup(self, stage: str | None = None) -> None:
        if self.store_format == "shards":
            return  # streams are made per epoch, from the shards' index
        for split in SPLITS:
            if split in self.splits:
                continue
            clips = list_clips(self.root, split, self.vocabulary)
            store = NpzClipStore(self.cache_dir)
            ready = [c for c in clips if store.usable(clip_key(c))]
            if len(ready) < len(clips):
                warnings.warn(f"LRW {split}: {len(clips) - len(ready)} of {len(clips)} clips are not prepared "
                              f"and are left out; see {self.cache_dir / REPORT_NAME} or run `avtoolkit prepare`",
                              stacklevel=2)
            self.splits[split] = LRWClips(ready, self.cache_dir, train=split == "train",
                                          crop_size=self.crop_size, flip=self.flip, time_mask=self.time_mask)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if self.store_format == "shards":
            return self._stream_loader(split, shuffle)
        if split not in self.splits:
            self.setup()
        if not len(self.splits[split]):
            raise LRWNotFoundError(f"LRW {split} split is empty under {self.root} for the selected words "
                                   f"(or none is prepared in {self.cache_dir}). {LRW_HELP}")
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.workers,
                          collate_fn=functools.partial(collate, word_boundary=self.use_word_boundary),
                          persistent_workers=self.workers > 0, drop_last=False)


    def _stream_loader(self, split: str, shuffle: bool) -> DataLoader:
        from avtoolkit.datasets._stream import ShardStream, stream_loader
        from avtoolkit.store import ShardClipStore

        base = self.shards_dir or str(shard_folder(self.cache_dir))
        folder = ShardClipStore(f"{base.rstrip('/')}/{split}")
        if folder.read_index() is None:
            raise LRWNotFoundError(f"LRW {split}: no shards in {folder.location}; run `avtoolkit prepare RECIPE "
                                   f"--format shards` (and `--index` after `--part I/N` runs)")
        train = split == "train"
        stream = ShardStream(folder, LRWShardItems(self.vocabulary, self.crop_size, self.flip, self.time_mask),
                             functools.partial(collate, word_boundary=self.use_word_boundary),
                             batch_size=None if self.max_frames else self.batch_size, max_frames=self.max_frames,
                             shuffle=shuffle, buffer=self.shuffle_buffer, seed=self.seed, train=train,
                             names=("rois", "duration"))
        trainer = getattr(self, "trainer", None)
        if train:
            self.train_stream(stream, trainer.current_epoch if trainer is not None else 0)
        return stream_loader(stream, self.workers)


def build_recipe_roi_cache(recipe: object, overrides: list[str] | None = None, workers: int | None = None,
                           progress: bool = True, store_format: str | None = None, part: tuple[int, int] = (1, 1),
                           index_only: bool = False) -> PrepareReport:
    """Caches the mouth ROIs of the LRW clips a recipe's ``data`` section selects (what
    ``avtoolkit prepare`` runs).

    Args:
        recipe: a recipe path, mapping or :class:`~avtoolkit.recipe.Recipe` with ``data.name: lrw``.
        overrides: ``key.path=value`` strings (e.g. ``data.root=/data/lipread_mp4``).
        workers: processes (default: ``data.prepare_workers``, else every core).
        progress: show a progress bar.
        store_format: ``npz`` or ``shards`` (default: the recipe's ``data.store_format``).
        part, index_only: see :func:`~avtoolkit.datasets.lrw.prepare.build_roi_cache`.

    Raises:
        RecipeError: the recipe does not validate.
        LRWNotFoundError: ``data.root`` is unset or not an LRW tree.
        ValueError: the recipe's dataset is not ``lrw``.
    """
    from avtoolkit.recipe import validate_recipe

    loaded = validate_recipe(recipe, overrides, require_data=True)
    data = dict(loaded["data"])
    if data.pop("name") != "lrw":
        raise ValueError(f"data.name is {loaded['data']['name']!r}: `avtoolkit prepare` prepares LRW recipes")
    dm = LRWDataModule(**data)
    return build_roi_cache(dm.root, dm.cache_dir, words_list=dm.vocabulary, method=dm.crop_method,
                           landmarks_dir=dm.landmarks_dir, workers=workers or dm.prepare_workers, progress=progress,
                           store_format=store_format or dm.store_format, part=part, shard_size=dm.shard_size,
                           index_only=index_only)
