"""Torch datasets over prepared GRID clips: sentences (AV-ASR) and words (LRW-style).

Both read ``<cache folder>/<speaker>/<id>.npz`` written by
:func:`~avtoolkit.datasets.grid.cache.prepare_grid` (``rois`` uint8 ``[T, S, S]``, ``audio``
int16 16 kHz) and yield the batch-dict items of :mod:`avtoolkit.data.contract`.
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

from avtoolkit.data.augment import add_noise, babble, spec_augment
from avtoolkit.datasets.grid.cache import SAMPLE_RATE, cache_path
from avtoolkit.datasets.grid.layout import GridClip
from avtoolkit.datasets.grid.words import WordCut, word_window

AUDIO_NORMS = ("none", "utterance")
#: GRID's video rate, and the cached audio's samples per video frame.
VIDEO_FPS = 25
AUDIO_PER_FRAME = SAMPLE_RATE // VIDEO_FPS


def load_prepared(folder: Path, clip: GridClip, rois: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """``(rois uint8 [T, S, S], audio float32 [S] in [-1, 1])`` of a prepared clip.

    ``rois=False`` gives ``None`` for the ROIs without decompressing them (audio-only reads:
    the ROIs are nine tenths of the file and most of the reading time).
    """
    path = cache_path(folder, clip)
    try:
        with np.load(path, allow_pickle=False) as data:
            return (data["rois"] if rois else None), data["audio"].astype(np.float32) / 32768.0
    except Exception as exc:
        exc.add_note(f"while reading the prepared GRID clip {path} (of {clip.video}); delete it to prepare it again")
        raise


def normalise_log_mel(feats: Tensor, how: str) -> Tensor:
    """Per-utterance mean/variance normalisation of log-mel ``[T, n_mels]`` (``how="utterance"``).

    Examples:
        >>> x = normalise_log_mel(torch.randn(50, 4) * 3 + 7, "utterance")
        >>> bool(x.mean(0).abs().max() < 1e-5), bool((x.std(0) - 1).abs().max() < 1e-3)
        (True, True)
    """
    if how == "none":
        return feats
    if how != "utterance":
        raise ValueError(f"data.audio_norm: '{how}' is not one of {', '.join(AUDIO_NORMS)}")
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


class _Audio:
    """Noise, log-mel, normalisation and SpecAugment shared by both modes."""

    def __init__(self, folder: Path, babble_pool: Sequence[GridClip], noise_snr_db: float | list[float] | None,
                 noise_prob: float, noise_type: str, babble_talkers: int, spec: Mapping[str, Any] | None,
                 audio_norm: str) -> None:
        from avtoolkit.data.features import LogMel

        self.folder = folder
        self.babble_pool = list(babble_pool)
        self.noise_snr_db = noise_snr_db
        self.noise_prob = noise_prob
        self.noise_type = noise_type
        self.babble_talkers = babble_talkers
        self.spec = spec
        self.audio_norm = audio_norm
        self.log_mel = LogMel()
        # Babble talkers' audio, read once per process: every noisy item sums several other
        # clips, and reading them from the cache each time made data loading slower than the
        # training step (0.1 s per item on this CPU). 700 GRID clips are about 135 MB.
        self._talkers: dict[str, Tensor] = {}

    def noisy_wave(self, wave: np.ndarray, clip: GridClip, g: torch.Generator | None) -> Tensor:
        """The 16 kHz waveform :meth:`features` computes its log-mel from: ``wave`` with this setting's noise.

        Draws from ``g`` exactly as :meth:`features` does before its log-mel, so a reference
        recogniser given this waveform hears what the models are scored on.
        """
        x = torch.from_numpy(wave)
        snr = self.noise_snr_db
        if snr is not None and float(torch.rand(1, generator=g)) < self.noise_prob:
            if isinstance(snr, (list, tuple)):
                snr = float(snr[0]) + (float(snr[1]) - float(snr[0])) * float(torch.rand(1, generator=g))
            noise = self._babble(clip, len(x), g) if self.noise_type == "babble" else None
            x = add_noise(x, float(snr), noise=noise, generator=g)
        return x

    def features(self, wave: np.ndarray, clip: GridClip, g: torch.Generator | None) -> Tensor:
        x = self.noisy_wave(wave, clip, g)
        feats = normalise_log_mel(self.log_mel(x), self.audio_norm)
        if self.spec is not None:
            feats = spec_augment(feats, generator=g, **self.spec)
        return feats

    def _babble(self, clip: GridClip, length: int, g: torch.Generator | None) -> Tensor:
        others = [c for c in self.babble_pool if c.key != clip.key]
        if not others:
            raise ValueError("data.noise_type: babble needs other prepared clips in the training split")
        picks = torch.randint(len(others), (self.babble_talkers,), generator=g).tolist()
        talkers = [self._talker(others[i]) for i in picks]
        # A random start in each talker, so babble is not every sentence's silent lead-in at once.
        talkers = [t.roll(int(torch.randint(len(t), (1,), generator=g))) for t in talkers]
        return babble(talkers, length)

    def _talker(self, clip: GridClip) -> Tensor:
        if clip.key not in self._talkers:
            self._talkers[clip.key] = torch.from_numpy(load_prepared(self.folder, clip, rois=False)[1])
        return self._talkers[clip.key]


def _generator(train: bool, seed: int, key: str) -> torch.Generator | None:
    if train:
        return None  # the global RNG: DataLoader seeds each worker differently
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}|{key}".encode()))


class GridSentences(Dataset):
    """Prepared GRID sentences as AV-ASR items (``audio`` log-mel, ``video`` ROIs, char ``targets``).

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
                 audio: _Audio, train: bool, seed: int = 0, trim_silence: float | None = None) -> None:
        from avtoolkit.data.text import CharVocab

        self.clips = list(clips)
        self.folder = folder
        self.modalities = list(modalities)
        self.video_size = (int(video_size), int(video_size))
        self.audio = audio
        self.train = train
        self.seed = seed
        self.trim_silence = trim_silence
        self.vocab = CharVocab()

    def __len__(self) -> int:
        return len(self.clips)

    def _speech_window(self, clip: GridClip, frames: int) -> tuple[int, int]:
        """Video frames ``[lo, hi)`` of the aligned speech with random silence margins (training)."""
        margin = [float(m) * self.trim_silence * VIDEO_FPS for m in torch.rand(2)]
        lo = max(0, math.floor(clip.words[0].start_frame - margin[0]))
        hi = min(frames, math.ceil(clip.end_frame + margin[1]))
        return lo, max(hi, lo + 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from avtoolkit.datasets.manifest.dataset import video_tensor

        clip = self.clips[index]
        rois, wave = load_prepared(self.folder, clip, rois="video" in self.modalities)
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
            item["video"] = video_tensor(rois, self.video_size)
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

    With ``audio`` among the modalities the matching 100 Hz log-mel span (4 frames per video
    frame) is included too.

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
                 audio: _Audio | None = None, seed: int = 0) -> None:
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
        from avtoolkit.datasets.lrw import transforms as T

        cut = self.cuts[index]
        rois, wave = load_prepared(self.folder, cut.clip)
        first, boundary = word_window(cut.word, len(rois), self.window)
        item: dict[str, Any] = {"id": cut.key, "text": cut.word.word, "label": cut.label,
                                "word_boundary": torch.from_numpy(boundary)}
        if "video" in self.modalities:
            x = torch.from_numpy(rois[first:first + len(boundary)])
            if self.train:
                x = T.horizontal_flip(T.random_crop(x, self.crop_size), self.flip)
            else:
                x = T.center_crop(x, self.crop_size)
            video = T.normalise(x)
            item["video"] = T.time_mask(video, self.time_mask) if self.train else video
        if "audio" in self.modalities and self.audio is not None:
            feats = self.audio.features(wave, cut.clip, _generator(self.train, self.seed, cut.key))
            item["audio"] = feats[4 * first:4 * (first + len(boundary))]
        return item


def collate_words(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pads word items into a batch (``video``/``audio`` with lengths, ``word_boundary``, ``label``)."""
    from avtoolkit.data.contract import pad_sequences

    batch: dict[str, Any] = {"ids": [i["id"] for i in items], "texts": [i["text"] for i in items],
                             "label": torch.tensor([i["label"] for i in items], dtype=torch.long)}
    batch["word_boundary"], _ = pad_sequences([i["word_boundary"] for i in items])
    for key in ("video", "audio"):
        if key in items[0]:
            batch[key], batch[f"{key}_lengths"] = pad_sequences([i[key] for i in items])
    return batch
