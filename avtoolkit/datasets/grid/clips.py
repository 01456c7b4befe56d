"""Torch datasets over prepared GRID clips: sentences (AV-ASR) and words (LRW-style).

Both read ``<cache folder>/<speaker>/<id>.npz`` written by
:func:`~avtoolkit.datasets.grid.prepare.prepare_grid` (``rois`` uint8 ``[T, S, S]``, ``audio``
int16 16 kHz) and yield the batch-dict items of :mod:`avtoolkit.data.contract`.
:class:`GridShardSentences` makes the same sentence items from samples streamed out of shards.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from avtoolkit.data import video as V
from avtoolkit.data.noise import NoisyLogMel
from avtoolkit.datasets.grid.prepare import SAMPLE_RATE, clip_store
from avtoolkit.datasets.grid.layout import GridClip
from avtoolkit.datasets.grid.word_clips import WordCut, word_window
from avtoolkit.store import ClipStore

#: GRID's video rate, and the cached audio's samples per video frame.
VIDEO_FPS = 25
AUDIO_PER_FRAME = SAMPLE_RATE // VIDEO_FPS


def load_prepared(folder: Path, clip: GridClip, rois: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """``(rois uint8 [T, S, S], audio float32 [S] in [-1, 1])`` of a prepared clip.

    ``rois=False`` gives ``None`` for the ROIs without decompressing them (audio-only reads:
    the ROIs are nine tenths of the file and most of the reading time).
    """
    try:
        arrays = clip_store(folder).read(clip.key, ("rois", "audio") if rois else ("audio",)).arrays
    except Exception as exc:
        exc.add_note(f"(the prepared GRID clip of {clip.video})")
        raise
    return arrays.get("rois"), arrays["audio"].astype(np.float32) / 32768.0


class GridTalkers:
    """Babble for GRID: the other prepared clips of the training split (a :class:`~avtoolkit.data.noise.Talkers`).

    ``folder`` is the npz cache folder, or the training split's store (its shards).
    """

    missing = "other prepared clips in the training split"

    def __init__(self, folder: Path | ClipStore, pool: Sequence[GridClip]) -> None:
        self.folder = folder
        self.pool = list(pool)
        # Babble talkers' audio, read once per process: every noisy item sums several other
        # clips, and reading them from the cache each time made data loading slower than the
        # training step (0.1 s per item on this CPU). 700 GRID clips are about 135 MB.
        self._audio: dict[str, Tensor] = {}

    def others(self, clip: GridClip) -> list[GridClip]:
        return [c for c in self.pool if c.key != clip.key]

    def load(self, clip: GridClip) -> Tensor:
        if clip.key not in self._audio:
            if isinstance(self.folder, ClipStore):
                audio = self.folder.read(clip.key, ("audio",)).arrays["audio"].astype(np.float32) / 32768.0
            else:
                audio = load_prepared(self.folder, clip, rois=False)[1]
            self._audio[clip.key] = torch.from_numpy(audio)
        return self._audio[clip.key]


def grid_audio(folder: Path | ClipStore, babble_pool: Sequence[GridClip], noise_snr_db: float | list[float] | None,
               noise_prob: float, noise_type: str, babble_talkers: int, spec: Mapping[str, Any] | None,
               audio_norm: str, audio_input: str = "log_mel") -> NoisyLogMel:
    """The noisy-audio policy of one GRID split (log-mel or waveform input), babble drawn from ``babble_pool``."""
    return NoisyLogMel(noise_snr_db, noise_prob, noise_type, babble_talkers, spec, audio_norm,
                       talkers=GridTalkers(folder, babble_pool), audio_input=audio_input)


def _generator(train: bool, seed: int, key: str) -> torch.Generator | None:
    if train:
        return None  # the global RNG: DataLoader seeds each worker differently
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}|{key}".encode()))


class GridSentences(Dataset):
    """Prepared GRID sentences as AV-ASR items (``audio`` log-mel or waveform, ``video`` ROIs, char ``targets``).

    Args:
        clips: prepared clips of one split.
        folder: the cache folder they were prepared into.
        modalities: ``audio`` and/or ``video``.
        video_size: side of the square ROI given to the model (resized from the cache).
        audio: noise/feature settings (built by the datamodule).
        train: fresh noise and masks every epoch; else fixed per (seed, clip).
        seed: evaluation noise seed.
        trim_silence: training only: cut each clip to its aligned speech plus a random margin
            of up to this many seconds on each side (audio and video alike, on video-frame
            boundaries), drawn afresh every time; ``None`` keeps whole clips.
    """

    def __init__(self, clips: Sequence[GridClip], folder: Path, modalities: Sequence[str], video_size: int,
                 audio: NoisyLogMel, train: bool, seed: int = 0, trim_silence: float | None = None,
                 vocab: Any = None) -> None:
        from avtoolkit.data.text import CharVocab

        self.clips = list(clips)
        self.folder = folder
        self.modalities = list(modalities)
        self.video_size = (int(video_size), int(video_size))
        self.audio = audio
        self.train = train
        self.seed = seed
        self.trim_silence = trim_silence
        self.vocab = vocab or CharVocab()  # a data.tokens vocabulary, or characters

    def __len__(self) -> int:
        return len(self.clips)

    def _speech_window(self, clip: GridClip, frames: int) -> tuple[int, int]:
        """Video frames ``[lo, hi)`` of the aligned speech with random silence margins (training)."""
        margin = [float(m) * self.trim_silence * VIDEO_FPS for m in torch.rand(2)]
        lo = max(0, math.floor(clip.words[0].start_frame - margin[0]))
        hi = min(frames, math.ceil(clip.end_frame + margin[1]))
        return lo, max(hi, lo + 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.clips[index]
        rois, wave = load_prepared(self.folder, clip, rois="video" in self.modalities)
        return self.item(clip, rois, wave)

    def item(self, clip: GridClip, rois: np.ndarray | None, wave: np.ndarray) -> dict[str, Any]:
        """The item of ``clip`` from its prepared ``rois`` (uint8 ``[T, S, S]``, or ``None`` without video)
        and ``wave`` (float32 16 kHz in [-1, 1]), wherever they were read from."""
        if self.train and self.trim_silence is not None and clip.words:
            # GRID pads every sentence with about a second of silence on each side. Trained on
            # whole clips, the model emitted the first and last words at the clip's edges, from
            # the silence, instead of where they are spoken (docs/grid.md, finding 7); with edges
            # at a random distance from the speech they mark nothing.
            frames = len(rois) if rois is not None else len(wave) // AUDIO_PER_FRAME
            lo, hi = self._speech_window(clip, frames)
            wave = wave[lo * AUDIO_PER_FRAME:hi * AUDIO_PER_FRAME]
            rois = rois[lo:hi] if rois is not None else None
        item: dict[str, Any] = {"id": clip.key, "text": clip.transcript, "source": str(clip.video),
                                "targets": torch.tensor(self.vocab.encode(clip.transcript), dtype=torch.long)}
        if "audio" in self.modalities:
            item["audio"] = self.audio.features(wave, clip, _generator(self.train, self.seed, clip.key))
        if "video" in self.modalities:
            item["video"] = V.video_tensor(rois, self.video_size)
        return item

    def noisy_wave(self, index: int) -> Tensor:
        """The 16 kHz waveform (float in about [-1, 1]) that item ``index``'s ``audio`` log-mel is computed from.

        Noise included, drawn from the same per-clip generator as :meth:`__getitem__`: outside
        training the same samples every call, which is what a reference recogniser on the same
        noisy audio needs (``benchmarks/grid_pocketsphinx.py``).
        """
        clip = self.clips[index]
        _, wave = load_prepared(self.folder, clip)
        return self.audio.noisy_wave(wave, clip, _generator(self.train, self.seed, clip.key))


class GridWords(Dataset):
    """Prepared GRID words as LRW-style classification items (``video``, ``label``, ``word_boundary``).

    With ``audio`` among the modalities the matching span of the audio input is included too
    (4 log-mel frames, or 640 waveform samples, per video frame).

    Args:
        cuts: the words of one split.
        folder: the cache folder.
        window: video frames per cut.
        crop_size: square crop of the cached ROIs (random in training, centred otherwise).
        train: random crop, flip and time masking.
        flip: horizontal-flip probability in training.
        time_mask: most frames masked per training cut.
        modalities: ``video`` and/or ``audio``.
        audio: noise/feature settings for ``audio``.
        seed: evaluation noise seed.
    """

    def __init__(self, cuts: Sequence[WordCut], folder: Path, window: int, crop_size: int, train: bool,
                 flip: float = 0.5, time_mask: int = 3, modalities: Sequence[str] = ("video",),
                 audio: NoisyLogMel | None = None, seed: int = 0) -> None:
        self.cuts = list(cuts)
        self.folder = folder
        self.window = window
        self.crop_size = crop_size
        self.train = train
        self.flip = flip
        self.time_mask = time_mask
        self.modalities = list(modalities)
        self.audio = audio
        self.seed = seed

    def __len__(self) -> int:
        return len(self.cuts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        cut = self.cuts[index]
        rois, wave = load_prepared(self.folder, cut.clip)
        first, boundary = word_window(cut.word, len(rois), self.window)
        item: dict[str, Any] = {"id": cut.key, "text": cut.word.word, "label": cut.label,
                                "word_boundary": torch.from_numpy(boundary)}
        if "video" in self.modalities:
            x = torch.from_numpy(rois[first:first + len(boundary)])
            if self.train:
                x = V.horizontal_flip(V.random_crop(x, self.crop_size), self.flip)
            else:
                x = V.center_crop(x, self.crop_size)
            video = V.normalise(x)
            item["video"] = V.time_mask(video, self.time_mask) if self.train else video
        if "audio" in self.modalities and self.audio is not None:
            feats = self.audio.features(wave, cut.clip, _generator(self.train, self.seed, cut.key))
            per_frame = AUDIO_PER_FRAME if self.audio.audio_input == "waveform" else 4
            item["audio"] = feats[per_frame * first:per_frame * (first + len(boundary))]
        return item


class GridShardSentences:
    """``make_item`` of a :class:`~avtoolkit.datasets._stream.ShardStream` over GRID sentence shards (picklable).

    The items are :meth:`GridSentences.item`'s, so a clip gives the same batch from its shard as
    from the npz cache (the ROIs within the shards' JPEG error).

    Args:
        sentences: the split's :class:`GridSentences` (its clips, modalities, audio policy).
    """

    def __init__(self, sentences: GridSentences) -> None:
        self.sentences = sentences
        self.by_key = {c.key: c for c in sentences.clips}

    def __call__(self, clip: Any, key: str, train: bool) -> dict[str, Any]:
        audio = clip.arrays.get("audio")  # not read for a video-only model
        wave = audio.astype(np.float32) / 32768.0 if audio is not None else np.zeros(0, np.float32)
        return self.sentences.item(self.by_key[key], clip.arrays.get("rois"), wave)
