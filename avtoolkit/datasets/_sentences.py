"""What the sentence corpora (LRS2, LRS3, VoxCeleb2) share: clips with a transcript and a time window,
their preparation into a clip store, the torch dataset over it, and the datamodule base.

A corpus folder only reads its own layout into a :class:`CorpusLayout` (split -> clips, plus
the clips it could not use and why); :class:`SentenceCorpus` does the rest the same way for
every corpus. Preparation writes through a :class:`~avtoolkit.store.ClipStore` (``store()``),
so another backend (sharded archives) plugs in by overriding that one method.

Private to the corpus folders; the registry skips it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from avtoolkit.data.noise import NoisyLogMel
from avtoolkit.data.text import CHARACTERS, CharVocab, normalize_text
from avtoolkit.data.timed_words import TranscriptError, read_transcript, segment_words
from avtoolkit.datasets._prepare import Rejected, prepare_clips
from avtoolkit.datasets.base import AVDataModule
from avtoolkit.errors import DatasetNotFoundError
from avtoolkit.store import REPORT_NAME, ClipStore, NpzClipStore, PrepareReport, cache_folder, user_cache

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SAMPLE_RATE = 16000
#: the rate of LRS2, LRS3 and VoxCeleb2 video (used when a container reports none).
DEFAULT_FPS = 25.0


def hash_unit(text: str) -> float:
    """A stable number in ``[0, 1)`` from a name (splits and subsets that never move as files are added).

    Examples:
        >>> 0.0 <= hash_unit("id00012/21Uxsk56VDQ") < 1.0, hash_unit("a") == hash_unit("a")
        (True, True)
    """
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) / float(1 << 48)


@dataclass(frozen=True)
class SentenceClip:
    """One utterance to prepare: a video, its transcript and the window of it that is spoken.

    Attributes:
        key: the store key (``main/5535415699068794046/00001``; a segment of a long utterance
            adds its window in milliseconds, ``_t1630-2850``).
        video: the ``.mp4`` (its audio track is the audio).
        transcript: normalised (:func:`~avtoolkit.data.text.normalize_text`).
        start, end: the window in seconds; ``None``: the whole clip.
        source: the transcript's origin for messages (``file`` or ``file:line``).
    """

    key: str
    video: Path
    transcript: str
    start: float | None = None
    end: float | None = None
    source: str = ""


@dataclass
class CorpusLayout:
    """What a corpus reader found: clips by split, and ``(item, reason)`` for every one it left out."""

    splits: dict[str, list[SentenceClip]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    problems: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{s} {len(c)}" for s, c in self.splits.items())
        return f"{counts} clips; {len(self.problems)} left out"


def check_transcript(text: str, source: str, vocab: CharVocab | None = None) -> str:
    """``text`` normalised; raises :class:`TranscriptError` (naming ``source``) if empty or outside the characters.

    Examples:
        >>> check_transcript("WHEN YOU'RE COOKING", "a.txt:1")
        "when you're cooking"
    """
    norm = normalize_text(text)
    if not norm:
        raise TranscriptError(f"{source}: empty transcript (was {text!r})")
    bad = (vocab or CharVocab()).invalid_chars(norm)
    if bad:
        raise TranscriptError(f"{source}: characters outside the vocabulary {''.join(bad)!r} in {norm!r}")
    return norm


def lrs_clips(key: str, video: Path, layout: CorpusLayout, max_seconds: float | None) -> list[SentenceClip]:
    """The clips of one LRS2/LRS3 utterance (``video`` and the ``.txt`` beside it), problems noted in ``layout``.

    An utterance whose timed words span more than ``max_seconds`` is cut at word timings
    (:func:`~avtoolkit.data.timed_words.segment_words`) into segments ``<key>_t<start ms>-<end ms>``; shorter
    ones, and files without a timing table, stay whole.
    """
    txt = video.with_suffix(".txt")
    if not txt.is_file():
        layout.problems.append((key, f"no transcript {txt}"))
        return []
    try:
        parsed = read_transcript(txt)
        text = check_transcript(parsed.text, f"{txt}:1")
        if max_seconds is None or not parsed.words or parsed.words[-1].end <= max_seconds:
            return [SentenceClip(key, video, text, source=str(txt))]
        segments = segment_words(parsed.words, max_seconds)
        # A segment's key is its window in milliseconds: the same window is the same content, so a
        # cache prepared with another segment_seconds is never read as if it were cut this way (and
        # the key has no dot, which sharded formats read as the start of a file extension).
        return [SentenceClip(f"{key}_t{round(seg.start * 1000)}-{round(seg.end * 1000)}", video, check_transcript(seg.text, f"{txt} (segment {k})"),
                             seg.start, seg.end, f"{txt} (segment {k}: {seg.start:g}-{seg.end:g} s)")
                for k, seg in enumerate(segments)]
    except (TranscriptError, ValueError) as exc:
        layout.problems.append((key, str(exc) if str(txt) in str(exc) else f"{txt}: {exc}"))
        return []


def convert_sentence(args: tuple[SentenceClip, dict]) -> tuple[dict[str, np.ndarray], dict]:
    """One clip's ``rois`` (uint8 ``[T, S, S]``) and ``audio`` (int16, 16 kHz) in its window; raises for a bad clip."""
    from avtoolkit.data.media import read_audio, read_video
    from avtoolkit.roi.crop import MouthCropper

    clip, cropper_args = args
    frames, fps = read_video(clip.video, color="gray")
    # Containers misreport their rate (the shared GRID mp4s say 1875 fps for 25 fps video); word
    # timings are seconds, so a rate outside what a camera records is taken to be the corpora's 25.
    fps = fps if 1.0 <= fps <= 120.0 else DEFAULT_FPS
    wave = read_audio(clip.video, sample_rate=SAMPLE_RATE)
    if clip.start is not None and clip.end is not None:
        lo, hi = math.floor(clip.start * fps), math.ceil(clip.end * fps)
        if hi > len(frames) + 1:
            raise Rejected(f"words end at {clip.end:g} s but the video has {len(frames) / fps:.2f} s")
        frames = frames[lo:hi]
        wave = wave[round(lo / fps * SAMPLE_RATE):round(hi / fps * SAMPLE_RATE)]
    if len(frames) == 0:
        raise Rejected("no video frames in the clip's window")
    rois = MouthCropper(**cropper_args).crop(frames, source=clip.video)
    audio = np.clip(np.round(wave * 32767.0), -32768, 32767).astype(np.int16)
    meta = {"transcript": clip.transcript, "video": str(clip.video), "start": clip.start, "end": clip.end}
    return {"rois": rois, "audio": audio}, meta


class _StoreTalkers:
    """Babble: other prepared clips of the training split (a :class:`~avtoolkit.data.noise.Talkers`)."""

    missing = "other prepared clips in the training split"

    def __init__(self, store: ClipStore, pool: Sequence[SentenceClip]) -> None:
        self.store = store
        self.pool = list(pool)

    def others(self, clip: SentenceClip) -> list[SentenceClip]:
        return [c for c in self.pool if c.key != clip.key]

    def load(self, clip: SentenceClip) -> Tensor:
        return torch.from_numpy(self.store.read(clip.key, ("audio",)).arrays["audio"].astype(np.float32) / 32768.0)


class SentenceItems(Dataset):
    """Prepared sentences as AV-ASR items (``audio`` log-mel, ``video`` ROIs, character ``targets``).

    Args:
        clips: prepared clips of one split.
        store: the store they were prepared into.
        modalities: ``audio`` and/or ``video``.
        video_size: side of the ROI given to the model.
        audio: the noise and feature policy.
        train: fresh noise and masks each time; else fixed per (seed, clip).
        seed: evaluation noise seed.
    """

    def __init__(self, clips: Sequence[SentenceClip], store: ClipStore, modalities: Sequence[str], video_size: int,
                 audio: NoisyLogMel, train: bool, seed: int = 0) -> None:
        self.clips = list(clips)
        self.store = store
        self.modalities = list(modalities)
        self.video_size = (int(video_size), int(video_size))
        self.audio = audio
        self.train = train
        self.seed = seed
        self.vocab = CharVocab()

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from avtoolkit.data.video import video_tensor

        clip = self.clips[index]
        names = [n for n, m in (("rois", "video"), ("audio", "audio")) if m in self.modalities]
        arrays = self.store.read(clip.key, names).arrays
        item: dict[str, Any] = {"id": clip.key, "text": clip.transcript, "source": clip.source or str(clip.video),
                                "targets": torch.tensor(self.vocab.encode(clip.transcript), dtype=torch.long)}
        if "audio" in self.modalities:
            g = None if self.train else torch.Generator().manual_seed(zlib.crc32(f"{self.seed}|{clip.key}".encode()))
            item["audio"] = self.audio.features(arrays["audio"].astype(np.float32) / 32768.0, clip, g)
        if "video" in self.modalities:
            item["video"] = video_tensor(arrays["rois"], self.video_size)
        return item


class SentenceCorpus(AVDataModule):
    """The datamodule of a sentence corpus; a subclass gives :attr:`corpus`, :attr:`help` and :meth:`read_layout`.

    ``prepare_data`` crops the mouth and decodes the audio of every clip of every split once
    (all cores, resumable) into :meth:`store`; clips the reader or the preparation could not
    use are listed in ``prepare_report.tsv`` of the cache folder and named in a warning.
    Arguments are those of the subclasses (documented there).
    """

    corpus = "sentences"
    help = ""
    #: contact sheets of this many newly prepared videos go to ``<cache folder>/sheets``.
    sheets = 3
    #: ``avtoolkit prepare --format shards [--part I/N | --index]`` sets these: tar shards in
    #: ``<cache folder>/shards/<split>`` (docs/distributed.md); training still reads ``npz``.
    store_format = "npz"
    shard_size = 1000
    prepare_part: tuple[int, int] = (1, 1)
    prepare_index_only = False

    def __init__(self, root: str | None, *, batch_size: int, workers: int, modalities: list[str], video_size: int,
                 roi_size: int, crop_method: str, cache_dir: str | None, prepare_workers: int | None,
                 spec_augment: bool | dict, noise_snr_db: float | list[float] | None, noise_prob: float,
                 test_noise_snr_db: float | None, noise_type: str, babble_talkers: int,
                 max_clips: dict[str, int] | None, seed: int) -> None:
        super().__init__()
        from avtoolkit.data.augment import spec_augment_settings

        if root is None:
            raise DatasetNotFoundError(f"data.root is not set. {self.help}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetNotFoundError(f"data.root: {self.root} does not exist. {self.help}")
        self.batch_size = batch_size
        self.workers = workers
        self.modalities = list(modalities)
        self.video_size = video_size
        self.cropper_args = {"size": (roi_size, roi_size), "method": crop_method}
        self.cache_dir = cache_folder(cache_dir, user_cache(self.corpus, self.root))
        self.prepare_workers = prepare_workers
        self.spec_augment = spec_augment_settings(spec_augment)
        self.noise = {"noise_snr_db": noise_snr_db, "noise_prob": noise_prob, "noise_type": noise_type,
                      "babble_talkers": babble_talkers}
        self.test_noise_snr_db = test_noise_snr_db
        self.max_clips = dict(max_clips or {})
        self.seed = seed
        self.vocabulary = list(CHARACTERS)
        self._layout: CorpusLayout | None = None
        self.clips: dict[str, list[SentenceClip]] = {}
        self.prepare_report: PrepareReport | None = None
        self.splits: dict[str, SentenceItems] = {}

    def read_layout(self) -> CorpusLayout:
        """Split -> clips from the corpus's own layout under :attr:`root`."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_layout()")

    @property
    def folder(self) -> Path:
        """The cache folder of this crop setting."""
        from avtoolkit.roi.crop import MouthCropper

        return cache_folder(self.cache_dir, self.cache_dir, MouthCropper(**self.cropper_args).cache_key())

    def store(self) -> ClipStore:
        """Where prepared clips go and are read from (the one place a backend is chosen)."""
        return NpzClipStore(self.folder)

    def layout(self) -> CorpusLayout:
        """The corpus's clips by split, ``max_clips`` applied (read once)."""
        if self._layout is None:
            layout = self.read_layout()
            for split, limit in self.max_clips.items():
                # The first N in hash order: sorted keys group by video, so the first N would be few speakers.
                chosen = sorted(layout.splits.get(split, []), key=lambda c: hash_unit(c.key))[: int(limit)]
                layout.splits[split] = sorted(chosen, key=lambda c: c.key)
            self._layout = layout
        return self._layout

    def _prepare_shards(self) -> None:
        from avtoolkit.datasets._prepare import prepare_shards

        layout = self.layout()
        by_split = {split: [(c.key, c.key, (c, self.cropper_args),
                             {"text": c.transcript, "source": c.source or str(c.video), "start": c.start, "end": c.end})
                            for c in layout.splits.get(split, [])] for split in SPLITS}
        self.prepare_report = prepare_shards(self.folder / "shards", by_split, convert_sentence, header="clip\treason",
                                             part=self.prepare_part, shard_size=self.shard_size,
                                             index_only=self.prepare_index_only, workers=self.prepare_workers,
                                             desc=f"prepare {self.corpus}", progress=True,
                                             layout_problems=layout.problems)
        print(f"{self.corpus} shards in {self.folder / 'shards'}: {layout.summary()}; {self.prepare_report}")

    def prepare_data(self) -> None:
        if self.store_format == "shards":
            self._prepare_shards()
            return
        layout = self.layout()
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        report = PrepareReport(report_path=folder / REPORT_NAME, failed=list(layout.problems))
        clips = [c for split in SPLITS for c in layout.splits.get(split, [])]
        done = prepare_clips(self.store(), [(c.key, c.key, (c, self.cropper_args)) for c in clips],
                             convert_sentence, report, header="clip\treason", workers=self.prepare_workers,
                             desc=f"prepare {self.corpus}", progress=True)
        if done and self.sheets > 0:  # a few crops as pictures beside the report, to check them by eye
            from avtoolkit.roi.crop import MouthCropper
            from avtoolkit.roi.sheet import write_sheets

            videos = list(dict.fromkeys(clip.video for clip, _ in done))[: self.sheets]
            write_sheets(videos, folder / "sheets", MouthCropper(**self.cropper_args))
        self.prepare_report = report
        if report.prepared or report.failed:
            print(f"{self.corpus}: {layout.summary()}; {report}")

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        layout, store = self.layout(), self.store()
        for split in SPLITS:
            clips = layout.splits.get(split, [])
            ready = [c for c in clips if store.usable(c.key)]
            if len(ready) < len(clips):
                warnings.warn(f"{self.corpus} {split}: {len(clips) - len(ready)} of {len(clips)} clips are not "
                              f"prepared and are left out; reasons in {self.folder / REPORT_NAME}", stacklevel=2)
            self.clips[split] = ready
        if layout.problems:
            warnings.warn(f"{self.corpus}: {len(layout.problems)} clips left out by the layout reader, e.g. "
                          f"{layout.problems[0][0]}: {layout.problems[0][1]}", stacklevel=2)
        for split in SPLITS:
            train = split == "train"
            audio = NoisyLogMel(self.noise["noise_snr_db"] if train else self.test_noise_snr_db,
                                self.noise["noise_prob"] if train else 1.0, self.noise["noise_type"],
                                self.noise["babble_talkers"], self.spec_augment if train else None,
                                talkers=_StoreTalkers(store, self.clips["train"]))
            self.splits[split] = SentenceItems(self.clips[split], store, self.modalities, self.video_size, audio,
                                               train, self.seed)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        from avtoolkit.data.contract import collate

        if not self.splits:
            self.setup()
        if not len(self.splits[split]):
            raise DatasetNotFoundError(f"{self.corpus} {split} split is empty under {self.root}, or none of it is "
                                       f"prepared in {self.folder}. {self.help}")
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.workers,
                          collate_fn=collate, persistent_workers=self.workers > 0)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {split: len(ds) for split, ds in self.splits.items()}
        return info | {"modalities": self.modalities, "left_out": len(self.layout().problems),
                       "cache_dir": str(self.folder)}


def check_segment_seconds(value: float | None) -> float | None:
    """``data.segment_seconds`` checked before any work: positive seconds or ``None``.

    Examples:
        >>> check_segment_seconds(0)
        Traceback (most recent call last):
        ...
        avtoolkit.recipe.errors.RecipeError: recipe: data.segment_seconds: 0 is not positive; give seconds (auto_avsr uses 16 or 24) or null
    """
    from avtoolkit.recipe.errors import RecipeError

    if value is not None and not value > 0:
        raise RecipeError(f"data.segment_seconds: {value} is not positive; give seconds (auto_avsr uses 16 or 24) or null")
    return value


def common_args(local: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`SentenceCorpus` arguments out of a subclass's ``locals()``."""
    names = ("batch_size", "workers", "modalities", "video_size", "roi_size", "crop_method", "cache_dir",
             "prepare_workers", "spec_augment", "noise_snr_db", "noise_prob", "test_noise_snr_db", "noise_type",
             "babble_talkers", "max_clips", "seed")
    return {n: local[n] for n in names}
