"""``ManifestSpeech``: a manifest's utterances as model inputs (log-mel frames, mouth crops, token ids)."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from avtoolkit.data.augment import add_noise, babble, spec_augment
from avtoolkit.data.contract import pad_sequences
from avtoolkit.data.text import CharVocab
from avtoolkit.datasets.manifest.reader import Manifest, Utterance

#: grayscale mouth-crop normalisation (mean/std of mouth ROIs, as in LRW lipreading code).
VIDEO_MEAN, VIDEO_STD = 0.421, 0.165
NOISE_TYPES = ("white", "babble")

log = logging.getLogger(__name__)


def load_mouth_rois(path: Path, cache_dir: Path | None, cropper: Any) -> np.ndarray:
    """uint8 ``[T, h, w]`` mouth crops of a video file, or precomputed ones from ``.npy``/``.npz``.

    An ``.npz`` gives its ``rois`` array (what ``avtoolkit`` caches write), or its only array.
    Precomputed crops go through :func:`check_crops`.
    """
    from avtoolkit.data.media import MediaError
    from avtoolkit.roi import mouth_rois

    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        return mouth_rois(path, cache_dir, cropper)
    try:
        if suffix == ".npy":
            return check_crops(np.load(path, allow_pickle=False), str(path))
        with np.load(path, allow_pickle=False) as data:
            names = list(data.files)
            if "rois" not in names and len(names) != 1:
                raise MediaError(path, f"holds arrays {names}: mouth crops are read from one named 'rois' "
                                       "(or from the only array of the file)")
            return check_crops(data["rois" if "rois" in names else names[0]], str(path))
    except (OSError, ValueError) as exc:
        if isinstance(exc, MediaError):
            raise
        raise MediaError(path, f"not a readable NumPy {suffix} file ({exc})") from exc


def check_crops(rois: np.ndarray, name: str) -> np.ndarray:
    """Precomputed mouth crops as uint8 ``[T, h, w]``, converted from other dtypes when that is safe.

    Integers within 0..255 are cast; floats in ``[0, 1]`` are scaled to 0..255 and floats in
    ``[0, 255]`` rounded, each with a warning (a float array used as uint8 would be a constant
    input). Anything else is an error naming ``name``.

    Examples:
        >>> check_crops(np.full((2, 4, 4), 0.5, np.float32), "a.npy")[0, 0, 0]
        np.uint8(128)
        >>> check_crops(np.zeros((2, 16)), "a.npy")
        Traceback (most recent call last):
        ...
        avtoolkit.data.media.MediaError: a.npy: mouth crops must be grayscale [frames, height, width], got shape (2, 16)
    """
    from avtoolkit.data.media import MediaError

    if rois.ndim == 4 and rois.shape[-1] == 1:
        rois = rois[..., 0]
    if rois.ndim != 3 or 0 in rois.shape:
        raise MediaError(name, f"mouth crops must be grayscale [frames, height, width], got shape {rois.shape}")
    if rois.dtype == np.uint8:
        return rois
    kind = rois.dtype.kind
    if kind not in "iuf":
        raise MediaError(name, f"mouth crops must be uint8 grey levels, got {rois.dtype}")
    low, high = float(rois.min()), float(rois.max())
    if kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        raise MediaError(name, "mouth crops hold NaN or infinite values")
    if kind in "iu":
        if low < 0 or high > 255:
            raise MediaError(name, f"{rois.dtype} mouth crops range {low:g}..{high:g}, outside 0..255 grey levels; "
                                   "save them as uint8")
        return rois.astype(np.uint8)
    if low >= 0 and high <= 1:
        log.warning("%s: mouth crops are %s in [0, 1]: scaled to 0..255 grey levels (save uint8 to skip this)",
                    name, rois.dtype)
        return np.rint(rois * 255).astype(np.uint8)
    if low >= 0 and high <= 255:
        log.warning("%s: mouth crops are %s in [0, 255]: rounded to uint8 grey levels", name, rois.dtype)
        return np.rint(rois).astype(np.uint8)
    raise MediaError(name, f"{rois.dtype} mouth crops range {low:g}..{high:g}: expected grey levels in [0, 1] "
                           "or [0, 255]; save them as uint8")


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
        cropper: an :class:`avtoolkit.roi.MouthCropper` for video files.
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
        self.manifest_path = manifest.path
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
        self._length_warned: set[int] = set()  # once per utterance (per worker process)
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
        item: dict[str, Any] = {"id": utt.id, "text": utt.transcript, "source": f"{self.manifest_path}:{utt.line}",
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
        if "audio" in item and "video" in item and index not in self._length_warned:
            from avtoolkit.data.media import VIDEO_FPS, warn_if_lengths_differ

            audio_s = len(item["audio"]) * self.log_mel.hop_length / self.log_mel.sample_rate
            if warn_if_lengths_differ(audio_s, len(item["video"]) / VIDEO_FPS, item["source"]):
                self._length_warned.add(index)
        return item


def collate_utterances(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pads a list of items into a batch dict (see :mod:`avtoolkit.data.contract`)."""
    batch: dict[str, Any] = {"ids": [it["id"] for it in items], "texts": [it["text"] for it in items],
                             "sources": [it["source"] for it in items]}
    batch["targets"], batch["target_lengths"] = pad_sequences([it["targets"] for it in items])
    for key in ("audio", "video"):
        if key in items[0]:
            batch[key], batch[f"{key}_lengths"] = pad_sequences([it[key] for it in items])
    return batch
