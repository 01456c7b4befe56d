"""Dataset ``grid``: the GRID audio-visual corpus in its own layout, sentences or words."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import DataLoader

from avtoolkit.data.augment import spec_augment_settings
from avtoolkit.data.contract import collate
from avtoolkit.data.noise import AUDIO_INPUTS, AUDIO_NORMS, NOISE_TYPES
from avtoolkit.data.tokens import make_vocab
from avtoolkit.datasets._stream import StreamedTraining
from avtoolkit.datasets.base import AVDataModule
from avtoolkit.datasets.grid.prepare import clip_store, prepare_grid
from avtoolkit.datasets.grid.clips import GridSentences, GridShardSentences, GridWords, grid_audio
from avtoolkit.data.grid_grammar import VOCABULARY
from avtoolkit.datasets.grid.layout import GridClip, LayoutReport, find_clips
from avtoolkit.datasets.grid.splits import OVERLAPPED_TEST_PER_SPEAKER, UNSEEN_SPEAKERS, split_clips
from avtoolkit.datasets.grid.word_clips import word_cuts
from avtoolkit.registry.kinds import DATASETS
from avtoolkit.store import REPORT_NAME, PrepareReport, cache_folder, read_failed, user_cache

SPLITS = ("train", "val", "test")
MODES = ("sentence", "word")


def default_cache_dir(root: str | Path) -> Path:
    """``~/.cache/avtoolkit/grid_<name>_<hash of the resolved root>`` (corpora are often read-only; :func:`~avtoolkit.store.user_cache`).

    Examples:
        >>> default_cache_dir("/data/grid").name.startswith("grid_grid_")
        True
    """
    return user_cache("grid", root)


@DATASETS.register("grid")
class GridDataModule(StreamedTraining, AVDataModule):
    """GRID (Cooke et al. 2006): read from its own layout, split reproducibly, sentences or words.

    ``prepare_data`` crops the mouth ROIs and decodes the audio of every selected clip once
    (all cores, resumable; see :func:`~avtoolkit.datasets.grid.prepare.prepare_grid`). Clips the
    layout reader or the preparation could not use are listed in ``prepare_report.tsv`` of the
    cache folder, counted in :meth:`describe` and named in a warning; none is dropped silently.

    ``mode: sentence`` yields the AV-ASR contract (``audio`` log-mel or waveform, ``video`` ROIs, character
    ``targets``); ``mode: word`` yields the LRW contract (``video`` cuts of ``word_window``
    frames, ``label`` among GRID's 51 words, ``word_boundary``).

    Args:
        root: the GRID folder holding ``s<N>/`` and ``alignments/``.
        speakers: speakers to read (default: every ``s<N>`` folder).
        mode: ``sentence`` or ``word``.
        split: ``hash`` (by clip id with ``split_fractions``), ``unseen_speakers`` (LipNet:
            ``test_speakers`` held out) or ``overlapped`` (LipNet: ``test_per_speaker``
            random sentences of every speaker held out).
        split_fractions: ``hash``: train/val/test fractions; other protocols use ``val`` only.
        test_speakers: held-out speakers of ``unseen_speakers``.
        test_per_speaker: held-out sentences per speaker of ``overlapped``.
        split_seed: seed of the ``overlapped`` draw.
        max_clips: at most this many clips per split (``{train: 300, test: 50}``), chosen by
            the same id hash (so a spread of sentences, and stable as clips are added); for
            quick experiments.
        batch_size: items per batch.
        workers: dataloader worker processes.
        modalities: ``[audio, video]``, ``[audio]`` or ``[video]``.
        video_size: sentence mode: side of the mouth ROI given to the model.
        roi_size: side of the cached ROIs.
        crop_size: word mode: side of the (random in training, else centre) crop of the ROIs.
        crop_method: :class:`~avtoolkit.roi.crop.MouthCropper` method (``face`` finds the
            speaker's face; GRID is not face-centred like LRW).
        cache_dir: where prepared clips go (default :func:`default_cache_dir`).
        prepare_workers: processes for preparing (default: every core).
        audio_input: what the model's audio encoder reads, filled in from it by the run
            (``Encoder.audio_input``, docs/architecture.md): ``log_mel`` (40 bands, 100 per second)
            or ``waveform`` (the 16 kHz samples, normalised per utterance; SpecAugment then
            means time masks on the waveform).
        audio_norm: ``log_mel``: ``none`` or ``utterance`` (mean/variance normalise each utterance's
            log-mel; on GRID the model then read the first and last words out of the normalised
            silence at the clip's edges, docs/grid.md finding 7).
        spec_augment: SpecAugment in training: ``true``, a mapping or ``false``.
        trim_silence: sentence mode, training only: cut each clip to its aligned speech plus
            a random silence margin of up to this many seconds on each side (``null``: whole
            clips). Validation and test clips stay whole. See docs/grid.md, finding 7.
        noise_snr_db: training noise SNR (a number or ``[low, high]``); ``null``: clean.
        noise_prob: fraction of training items that get noise.
        test_noise_snr_db: noise at this SNR on validation and test audio (fixed per clip).
        noise_type: ``white``, ``babble`` (other clips of the *training* split summed) or ``mixed`` (either, by chance).
        babble_talkers: clips summed into one babble noise.
        word_window: word mode: video frames per word cut.
        use_word_boundary: word mode: put ``word_boundary`` in the batches.
        flip: word mode: horizontal-flip probability in training.
        time_mask: word mode: most frames masked per training cut.
        seed: evaluation noise seed; with ``shards`` also the seed of the per-epoch shard, buffer
            and augmentation draws.
        store_format: ``npz`` (one cached file per clip) or ``shards``: ``avtoolkit prepare
            --format shards`` writes each split's tar shards to :attr:`shard_folder`, and training
            streams them (sentence mode; each clip once per epoch across every rank and loader
            worker, the place inside an epoch saved by ``trainer.checkpoint_every_n_steps``;
            docs/distributed.md).
        shard_size: ``shards``: samples per shard.
        max_frames: ``shards``: batches of at most this many video frames in total (bucketed by
            length) instead of ``batch_size`` clips.
        shuffle_buffer: ``shards``: shuffle-buffer size in samples (also the bucketing window).
        tokens: sentence mode's token kind (:func:`avtoolkit.data.tokens.make_vocab`): characters by
            default, or ``{kind: sentencepiece, model: PATH}``.

    Raises:
        GridNotFoundError: ``root`` is not a GRID tree.
    """

    def __init__(
        self,
        root: str | None = None,
        speakers: list[str] | None = None,
        mode: Literal["sentence", "word"] = "sentence",
        split: Literal["hash", "unseen_speakers", "overlapped"] = "hash",
        split_fractions: dict[str, float] | None = None,
        test_speakers: list[str] = list(UNSEEN_SPEAKERS),
        test_per_speaker: int = OVERLAPPED_TEST_PER_SPEAKER,
        split_seed: int = 0,
        max_clips: dict[str, int] | None = None,
        batch_size: int = 16,
        workers: int = 2,
        modalities: list[str] = ["audio", "video"],
        video_size: int = 64,
        roi_size: int = 96,
        crop_size: int = 88,
        crop_method: Literal["face", "fixed", "landmarks", "auto_avsr"] = "face",
        cache_dir: str | None = None,
        prepare_workers: int | None = None,
        audio_input: Literal["log_mel", "waveform"] = "log_mel",
        audio_norm: Literal["utterance", "none"] = "none",
        spec_augment: bool | dict = True,
        trim_silence: float | None = None,
        noise_snr_db: float | list[float] | None = None,
        noise_prob: float = 0.5,
        test_noise_snr_db: float | None = None,
        noise_type: Literal["white", "babble", "mixed"] = "white",
        babble_talkers: int = 4,
        word_window: int = 15,
        use_word_boundary: bool = True,
        flip: float = 0.5,
        time_mask: int = 3,
        seed: int = 0,
        store_format: Literal["npz", "shards"] = "npz",
        shard_size: int = 1000,
        tokens: dict | None = None,
        max_frames: int | None = None,
        shuffle_buffer: int = 256,
    ) -> None:
        super().__init__()
        from avtoolkit.datasets.grid.layout import GRID_HELP, GridNotFoundError

        if root is None:
            raise GridNotFoundError(f"data.root is not set. {GRID_HELP}")
        for name, value, allowed in (("mode", mode, MODES), ("noise_type", noise_type, NOISE_TYPES),
                                     ("audio_norm", audio_norm, AUDIO_NORMS), ("audio_input", audio_input, AUDIO_INPUTS)):
            if value not in allowed:
                raise ValueError(f"data.{name}: '{value}' is not one of {', '.join(allowed)}")
        self.root = Path(root).expanduser()
        self.speakers = speakers
        self.mode = mode
        self.split_args = {"protocol": split, "fractions": split_fractions, "test_speakers": test_speakers,
                           "test_per_speaker": test_per_speaker, "seed": split_seed}
        self.max_clips = dict(max_clips or {})
        self.batch_size = batch_size
        self.workers = workers
        self.modalities = list(modalities)
        self.video_size = video_size
        self.crop_size = crop_size
        self.cropper_args = {"size": (roi_size, roi_size), "method": crop_method}
        self.cache_dir = cache_folder(cache_dir, default_cache_dir(self.root))
        self.prepare_workers = prepare_workers
        self.audio_input = audio_input
        self.audio_norm = audio_norm
        self.spec_augment = spec_augment_settings(spec_augment)
        if trim_silence is not None and trim_silence < 0:
            raise ValueError(f"data.trim_silence: {trim_silence} is negative; give seconds >= 0 or null")
        self.trim_silence = trim_silence
        self.noise = {"noise_snr_db": noise_snr_db, "noise_prob": noise_prob, "noise_type": noise_type,
                      "babble_talkers": babble_talkers}
        self.test_noise_snr_db = test_noise_snr_db
        self.word_window = word_window
        self.use_word_boundary = use_word_boundary
        self.flip = flip
        self.time_mask = time_mask
        self.seed = seed
        if store_format not in ("npz", "shards"):
            raise ValueError(f"data.store_format: '{store_format}' is not one of npz, shards")
        if store_format == "shards" and mode == "word":
            raise ValueError("data.store_format: shards streams GRID sentences (data.mode: sentence); word mode "
                             "trains from the npz cache, drop data.store_format")
        self.store_format, self.shard_size = store_format, shard_size
        self.streamed = store_format == "shards"
        self.max_frames, self.shuffle_buffer = max_frames, shuffle_buffer
        #: ``avtoolkit prepare --part I/N`` / ``--index`` set these before :meth:`prepare_data`.
        self.prepare_part: tuple[int, int] = (1, 1)
        self.prepare_index_only = False
        self.vocab = make_vocab(tokens)
        self.vocabulary = list(self.vocab.tokens) if mode == "sentence" else list(VOCABULARY)
        self._layout: LayoutReport | None = None
        self.clips: dict[str, list[GridClip]] = {}
        self.failed: dict[str, str] = {}
        self.prepare_report: PrepareReport | None = None
        self.splits: dict[str, Any] = {}

    @property
    def folder(self) -> Path:
        """The cache folder of this crop setting."""
        from avtoolkit.roi.crop import MouthCropper

        return cache_folder(self.cache_dir, self.cache_dir, MouthCropper(**self.cropper_args).cache_key())

    def layout(self) -> LayoutReport:
        """The clips found under ``root`` (read once)."""
        if self._layout is None:
            self._layout = find_clips(self.root, self.speakers)
        return self._layout

    def split_clips(self) -> dict[str, list[GridClip]]:
        """Split -> clips (before preparation), with ``max_clips`` applied."""
        return split_clips(self.layout().clips, self.split_args, self.max_clips)

    @property
    def shard_folder(self) -> Path:
        """``<folder>/shards_<hash of the split settings>``: its ``<split>/`` folders hold the shards
        (the split a clip lands in depends on those settings, so they name the folder)."""
        import hashlib
        import json

        settings = json.dumps([self.split_args, self.max_clips, self.speakers], sort_keys=True, default=str)
        return self.folder / f"shards_{hashlib.sha1(settings.encode()).hexdigest()[:10]}"

    def _prepare_shards(self) -> None:
        from avtoolkit.datasets._prepare import prepare_shards
        from avtoolkit.datasets.grid.prepare import convert_clip

        layout = self.layout()
        by_split = {split: [(c.key, c.key, (c, self.cropper_args),
                             {"text": c.transcript, "speaker": c.speaker,
                              "words": [[w.word, w.start_frame, w.end_frame] for w in c.words]})
                            for c in clips] for split, clips in self.split_clips().items()}
        report = prepare_shards(self.shard_folder, by_split, convert_clip, header="clip\treason",
                                part=self.prepare_part, shard_size=self.shard_size,
                                index_only=self.prepare_index_only, workers=self.prepare_workers,
                                desc="prepare GRID", progress=True, layout_problems=layout.problems)
        self.prepare_report = report
        print(f"GRID shards in {self.shard_folder}: {layout.summary()}; {report}")

    def prepare_data(self) -> None:
        if self.store_format == "shards":
            self._prepare_shards()
            return
        layout = self.layout()
        wanted = [c for clips in self.split_clips().values() for c in clips]
        report = prepare_grid(wanted, self.folder, self.cropper_args, layout.problems,
                              workers=self.prepare_workers)
        self.prepare_report = report  # what `avtoolkit prepare` prints
        if report.prepared or report.failed:
            print(f"GRID: {layout.summary()}; {report}")

    def _split_store(self, split: str) -> Any:
        """``shards``: the split's :class:`~avtoolkit.store.ShardClipStore` (its index must be written)."""
        from avtoolkit.datasets.grid.layout import GridNotFoundError
        from avtoolkit.store import ShardClipStore

        store = ShardClipStore(self.shard_folder / split)
        if store.read_index() is None:
            raise GridNotFoundError(f"GRID {split}: no shards in {store.location}; run `avtoolkit prepare RECIPE "
                                    "--format shards` (and `--index` after `--part I/N` runs)")
        return store

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        streamed = self.store_format == "shards"
        folder = self.shard_folder if streamed else self.folder
        self.failed = read_failed(folder)
        by_split = self.split_clips()
        stores = {split: self._split_store(split) for split in SPLITS} if streamed else {}
        for split, clips in by_split.items():
            if streamed:
                keys = set(stores[split].keys())
                ready = [c for c in clips if c.key in keys]
            else:
                store = clip_store(folder)
                ready = [c for c in clips if store.usable(c.key)]
            if len(ready) < len(clips):
                warnings.warn(f"GRID {split}: {len(clips) - len(ready)} of {len(clips)} clips are not prepared and "
                              f"are left out; reasons in {folder / REPORT_NAME}", stacklevel=2)
            self.clips[split] = ready
        layout_problems = self.layout().problems
        if layout_problems:
            warnings.warn(f"GRID: {len(layout_problems)} clips left out by the layout reader, e.g. "
                          f"{layout_problems[0][0]}: {layout_problems[0][1]}", stacklevel=2)
        for split in SPLITS:
            train = split == "train"
            audio = grid_audio(stores["train"] if streamed else folder, self.clips["train"],
                               self.noise["noise_snr_db"] if train else self.test_noise_snr_db,
                               self.noise["noise_prob"] if train else 1.0, self.noise["noise_type"],
                               self.noise["babble_talkers"], self.spec_augment if train else None, self.audio_norm,
                               self.audio_input)
            if self.mode == "sentence":
                self.splits[split] = GridSentences(self.clips[split], folder, self.modalities, self.video_size,
                                                   audio, train, self.seed,
                                                   self.trim_silence if train else None, vocab=self.vocab)
            else:
                self.splits[split] = GridWords(word_cuts(self.clips[split]), folder, self.word_window,
                                               self.crop_size, train, self.flip, self.time_mask,
                                               self.modalities, audio, self.seed)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        from avtoolkit.datasets.grid.layout import GRID_HELP, GridNotFoundError

        if not self.splits:
            self.setup()
        if not len(self.splits[split]):
            raise GridNotFoundError(f"GRID {split} split is empty under {self.root} (speakers {self.speakers}, "
                                    f"split {self.split_args['protocol']}) or none of it is prepared in "
                                    f"{self.shard_folder if self.streamed else self.folder}. {GRID_HELP}")
        if self.streamed:
            return self._stream_loader(split, shuffle)
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.workers,
                          collate_fn=functools.partial(collate, word_boundary=self.use_word_boundary),
                          persistent_workers=self.workers > 0)

    def _stream_loader(self, split: str, shuffle: bool) -> DataLoader:
        from avtoolkit.datasets._stream import ShardStream, stream_loader

        train = split == "train"
        names = [n for n, m in (("rois", "video"), ("audio", "audio")) if m in self.modalities]
        stream = ShardStream(self._split_store(split), GridShardSentences(self.splits[split]),
                             functools.partial(collate, word_boundary=self.use_word_boundary),
                             batch_size=None if self.max_frames else self.batch_size, max_frames=self.max_frames,
                             shuffle=shuffle, buffer=self.shuffle_buffer, seed=self.seed, train=train, names=names)
        trainer = getattr(self, "trainer", None)
        if train:
            self.train_stream(stream, trainer.current_epoch if trainer is not None else 0)
        return stream_loader(stream, self.workers)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {split: len(ds) for split, ds in self.splits.items()}
        return info | {"mode": self.mode, "modalities": self.modalities, "split": self.split_args["protocol"],
                       "failed_clips": len(self.failed),
                       "cache_dir": str(self.shard_folder if self.streamed else self.folder)}
