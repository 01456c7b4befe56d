"""Dataset ``manifest``: sentence-level audio-visual speech from ``audio|video|transcript`` lists."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from avtoolkit.data.augment import add_noise, babble, spec_augment
from avtoolkit.data.contract import AVDataModule
from avtoolkit.data.manifest import Manifest, Utterance, read_manifest
from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.registry.kinds import DATASETS

#: grayscale mouth-crop normalisation (mean/std of mouth ROIs, as in LRW lipreading code).
VIDEO_MEAN, VIDEO_STD = 0.421, 0.165
SPLITS = ("train", "val", "test")
NOISE_TYPES = ("white", "babble")
_SPEC_DEFAULTS = {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 0.05}


def load_mouth_rois(path: Path, cache_dir: Path | None, cropper: Any) -> np.ndarray:
    """uint8 ``[T, h, w]`` mouth crops of a video file, or precomputed ones from ``.npy``/``.npz``."""
    from avtoolkit.data.mouth import mouth_rois

    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return data[data.files[0]]
    return mouth_rois(path, cache_dir, cropper)


def video_tensor(rois: np.ndarray, size: tuple[int, int]) -> Tensor:
    """Normalised float ``[T, 1, H, W]`` from uint8 ``[T, h, w]`` crops (resized if needed)."""
    x = torch.from_numpy(np.ascontiguousarray(rois)).float().div_(255.0).unsqueeze(1)
    if tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return (x - VIDEO_MEAN) / VIDEO_STD


class ManifestSpeech(Dataset):
    """Utterances of one manifest as model inputs (log-mel frames, mouth crops, token ids).

    Args:
        manifest: the parsed manifest.
        modalities: which inputs to load (``"audio"``, ``"video"``).
        video_size: mouth crop ``(height, width)`` fed to the model.
        cropper: an :class:`avtoolkit.data.mouth.MouthCropper` for video files.
        cache_dir: where mouth crops are cached (``None``: no disk cache).
        spec_augment: SpecAugment settings (see :func:`~avtoolkit.data.augment.spec_augment`),
            or ``None`` for none.
        noise_snr_db: add white noise at this SNR (a number) or at an SNR drawn uniformly
            from ``[low, high]``; ``None`` for clean audio.
        noise_prob: the probability an utterance gets noise.
        noise_type: ``white``, or ``babble`` (``babble_talkers`` other utterances of the
            same manifest, so test babble comes from test speakers only).
        babble_talkers: utterances summed into babble noise.
        seed: makes noise and masks depend only on (seed, utterance): evaluation at a fixed
            SNR gives the same noisy audio every time.
        train: draw fresh noise and masks every epoch instead.
    """

    def __init__(self, manifest: Manifest, modalities: list[str], video_size: tuple[int, int], cropper: Any,
                 cache_dir: Path | None, spec_augment: Mapping[str, Any] | None = None,
                 noise_snr_db: float | list[float] | None = None, noise_prob: float = 1.0,
                 seed: int = 0, train: bool = False, noise_type: str = "white",
                 babble_talkers: int = 4) -> None:
        from avtoolkit.data.features import LogMel

        if noise_type not in NOISE_TYPES:
            raise ValueError(f"data.noise_type: '{noise_type}' is not one of {', '.join(NOISE_TYPES)}")

        self.utterances: list[Utterance] = manifest.utterances
        self.modalities = modalities
        self.video_size = video_size
        self.cropper = cropper
        self.cache_dir = cache_dir
        self.spec_augment = spec_augment
        self.noise_snr_db = noise_snr_db
        self.noise_prob = noise_prob
        self.seed = seed
        self.train = train
        self.noise_type = noise_type
        self.babble_talkers = babble_talkers
        self.vocab = CharVocab()
        self.log_mel = LogMel()

    def __len__(self) -> int:
        return len(self.utterances)

    def _generator(self, index: int) -> torch.Generator | None:
        if self.train:
            return None  # the global RNG: DataLoader seeds each worker differently
        key = zlib.crc32(f"{self.seed}|{self.utterances[index].id}".encode())
        return torch.Generator().manual_seed(key)

    def audio_features(self, utt: Utterance, g: torch.Generator | None) -> Tensor:
        """Log-mel ``[T, 40]`` of an utterance, with noise and masking as configured."""
        from avtoolkit.data.media import read_audio

        assert utt.audio is not None
        wave = torch.from_numpy(read_audio(utt.audio, sample_rate=16000))
        snr = self.noise_snr_db
        if snr is not None and float(torch.rand(1, generator=g)) < self.noise_prob:
            if isinstance(snr, (list, tuple)):
                low, high = float(snr[0]), float(snr[1])
                snr = low + (high - low) * float(torch.rand(1, generator=g))
            noise = self._babble(utt, len(wave), g) if self.noise_type == "babble" else None
            wave = add_noise(wave, float(snr), noise=noise, generator=g)
        feats = self.log_mel(wave)
        if self.spec_augment is not None:
            feats = spec_augment(feats, generator=g, **self.spec_augment)
        return feats

    def _babble(self, utt: Utterance, length: int, g: torch.Generator | None) -> Tensor:
        from avtoolkit.data.media import read_audio

        others = [u for u in self.utterances if u.audio is not None and u.audio != utt.audio]
        if not others:
            raise ValueError("data.noise_type: babble needs other utterances in the manifest")
        picks = torch.randint(len(others), (self.babble_talkers,), generator=g).tolist()
        talkers = [torch.from_numpy(read_audio(others[i].audio, sample_rate=16000)) for i in picks]
        # A random start in each talker, so babble is not every sentence's silent lead-in at once.
        talkers = [t.roll(int(torch.randint(len(t), (1,), generator=g))) for t in talkers]
        return babble(talkers, length)

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt = self.utterances[index]
        g = self._generator(index)
        item: dict[str, Any] = {"id": utt.id, "text": utt.transcript,
                                "targets": torch.tensor(self.vocab.encode(utt.transcript), dtype=torch.long)}
        try:
            if "audio" in self.modalities:
                item["audio"] = self.audio_features(utt, g)
            if "video" in self.modalities:
                assert utt.video is not None
                item["video"] = video_tensor(load_mouth_rois(utt.video, self.cache_dir, self.cropper),
                                             self.video_size)
        except Exception as exc:
            exc.add_note(f"while loading utterance '{utt.id}' (line {utt.line} of the manifest)")
            raise
        return item


def _pad(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    out = seqs[0].new_zeros((len(seqs), int(lengths.max()), *seqs[0].shape[1:]))
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def collate_utterances(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pads a list of items into a batch dict (see :mod:`avtoolkit.data.contract`)."""
    batch: dict[str, Any] = {"ids": [it["id"] for it in items], "texts": [it["text"] for it in items]}
    batch["targets"], batch["target_lengths"] = _pad([it["targets"] for it in items])
    for key in ("audio", "video"):
        if key in items[0]:
            batch[key], batch[f"{key}_lengths"] = _pad([it[key] for it in items])
    return batch


@DATASETS.register("manifest")
class ManifestDataModule(AVDataModule):
    """Sentence-level AV-ASR data from manifest files (``audio_path|video_path|transcript``).

    Audio is read from any container PyAV decodes, mixed to mono, resampled to 16 kHz and
    turned into 40 log-mel bands at 100 frames per second. Video becomes grayscale mouth
    crops (found with OpenCV's face detector by default, cached in ``cache_dir``) or is
    read from precomputed ``.npy``/``.npz`` crops. Bad manifest lines stop the run with
    ``file:line: reason``, or with ``skip_bad_lines`` are listed in a warning with a count.

    Args:
        train: training manifest.
        val: validation manifest (defaults to ``test`` when missing).
        test: test manifest.
        batch_size: utterances per batch.
        workers: dataloader worker processes.
        modalities: inputs to load: ``[audio, video]``, ``[audio]`` or ``[video]``.
        video_size: side of the square mouth crop given to the model.
        crop_method: ``face`` (detect the face, take the mouth region), ``fixed`` or ``landmarks``.
        cache_dir: mouth-crop cache (default ``<train manifest folder>/mouth_cache``).
        spec_augment: SpecAugment in training: ``true`` for the defaults, a mapping
            (``freq_masks``, ``freq_width``, ``time_masks``, ``time_width``) or ``false``.
        noise_snr_db: training noise SNR in dB, a number or ``[low, high]``; ``null``: none.
        noise_prob: fraction of training utterances that get noise.
        test_noise_snr_db: add noise at this SNR to validation and test audio (robustness
            curves); the same noise every run.
        noise_type: ``white`` or ``babble`` (other utterances of the same split summed),
            for training and test noise alike.
        babble_talkers: utterances summed into one babble noise.
        skip_bad_lines: report and skip bad manifest lines instead of stopping.
        seed: seed for evaluation noise.

    Raises:
        FileNotFoundError: a manifest does not exist.
        ManifestError: a bad line (``file:line: reason``).
    """

    def __init__(self, train: str | None = None, val: str | None = None, test: str | None = None,
                 batch_size: int = 8, workers: int = 0, modalities: list[str] = ["audio", "video"],
                 video_size: int = 64, crop_method: Literal["face", "fixed", "landmarks"] = "face", cache_dir: str | None = None,
                 spec_augment: bool | dict = True, noise_snr_db: float | list[float] | None = None,
                 noise_prob: float = 0.5, test_noise_snr_db: float | None = None,
                 skip_bad_lines: bool = False, seed: int = 0, noise_type: Literal["white", "babble"] = "white",
                 babble_talkers: int = 4) -> None:
        super().__init__()
        if noise_type not in NOISE_TYPES:
            raise ValueError(f"data.noise_type: '{noise_type}' is not one of {', '.join(NOISE_TYPES)}")
        self.paths = {"train": train, "val": val or test, "test": test}
        if not any(self.paths.values()):
            raise ValueError("data.train / data.val / data.test: give at least one manifest path")
        self.vocabulary = list(CHARACTERS)
        self.batch_size = batch_size
        self.workers = workers
        self.modalities = list(modalities)
        self.video_size = (int(video_size), int(video_size))
        self.crop_method = crop_method
        first = next(Path(p).expanduser() for p in self.paths.values() if p)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else first.parent / "mouth_cache"
        if spec_augment is True:
            self.spec_augment: dict | None = dict(_SPEC_DEFAULTS)
        elif isinstance(spec_augment, Mapping):
            self.spec_augment = {**_SPEC_DEFAULTS, **spec_augment}
        else:
            self.spec_augment = None
        self.noise_snr_db = noise_snr_db
        self.noise_prob = noise_prob
        self.test_noise_snr_db = test_noise_snr_db
        self.noise_type = noise_type
        self.babble_talkers = babble_talkers
        self.skip_bad_lines = skip_bad_lines
        self.seed = seed
        self.manifests: dict[str, Manifest] = {}
        self.splits: dict[str, ManifestSpeech] = {}

    def _cropper(self) -> Any:
        from avtoolkit.data.mouth import MouthCropper

        return MouthCropper(size=self.video_size, method=self.crop_method)

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            path = self.paths[split]
            if path is None or split in self.splits:
                continue
            manifest = read_manifest(Path(path).expanduser(), self.modalities, self.skip_bad_lines)
            if manifest.skipped:
                warnings.warn(f"{manifest.summary()}:\n  " + "\n  ".join(manifest.skipped), stacklevel=2)
            self.manifests[split] = manifest
            train = split == "train"
            self.splits[split] = ManifestSpeech(
                manifest, self.modalities, self.video_size, self._cropper(), self.cache_dir,
                spec_augment=self.spec_augment if train else None,
                noise_snr_db=self.noise_snr_db if train else self.test_noise_snr_db,
                noise_prob=self.noise_prob if train else 1.0, seed=self.seed, train=train,
                noise_type=self.noise_type, babble_talkers=self.babble_talkers)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.splits:
            self.setup()
        if split not in self.splits:
            raise ValueError(f"data.{split}: no manifest given for the {split} split")
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.workers, collate_fn=collate_utterances,
                          persistent_workers=self.workers > 0)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {split: len(ds) for split, ds in self.splits.items()}
        skipped = sum(len(m.skipped) for m in self.manifests.values())
        return info | {"modalities": self.modalities, "skipped_lines": skipped, "cache_dir": str(self.cache_dir)}
