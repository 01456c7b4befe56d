"""Dataset ``manifest``: sentence-level audio-visual speech from ``audio|video|transcript`` lists."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import DataLoader

from avtoolkit.data.augment import spec_augment_settings
from avtoolkit.data.contract import collate
from avtoolkit.data.noise import AUDIO_INPUTS, NOISE_TYPES
from avtoolkit.data.tokens import make_vocab
from avtoolkit.datasets.base import AVDataModule
from avtoolkit.datasets.manifest.dataset import ManifestSpeech
from avtoolkit.datasets.manifest.reader import Manifest, read_manifest
from avtoolkit.registry.kinds import DATASETS
from avtoolkit.store import cache_folder

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@DATASETS.register("manifest")
class ManifestDataModule(AVDataModule):
    """Sentence-level AV-ASR data from manifest files (``audio_path|video_path|transcript``).

    Audio is read from any container PyAV decodes, mixed to mono, resampled to 16 kHz and
    turned into what the model's audio encoder reads (``audio_input``): 40 log-mel bands at 100
    frames per second, or the waveform normalised per utterance. Video becomes grayscale mouth
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
        tokens: the token kind (:func:`avtoolkit.data.tokens.make_vocab`): characters by default, or
            ``{kind: sentencepiece, model: PATH, units: PATH, case: upper}``.
        audio_input: what the model's audio encoder reads, filled in from it by the run
            (``Encoder.audio_input``, docs/architecture.md): ``log_mel`` or ``waveform`` (the 16 kHz
            samples normalised per utterance; SpecAugment then means time masks on the waveform).

    Raises:
        FileNotFoundError: a manifest does not exist.
        ManifestError: a bad line (``file:line: reason``).
    """

    def __init__(self, train: str | None = None, val: str | None = None, test: str | None = None,
                 batch_size: int = 8, workers: int = 0, modalities: list[str] = ["audio", "video"],
                 video_size: int = 64, crop_method: Literal["face", "fixed", "landmarks", "auto_avsr"] = "face", cache_dir: str | None = None,
                 spec_augment: bool | dict = True, noise_snr_db: float | list[float] | None = None,
                 noise_prob: float = 0.5, test_noise_snr_db: float | None = None,
                 skip_bad_lines: bool = False, seed: int = 0, noise_type: Literal["white", "babble", "mixed"] = "white",
                 babble_talkers: int = 4, tokens: dict | None = None,
                 audio_input: Literal["log_mel", "waveform"] = "log_mel") -> None:
        super().__init__()
        if noise_type not in NOISE_TYPES:
            raise ValueError(f"data.noise_type: '{noise_type}' is not one of {', '.join(NOISE_TYPES)}")
        if audio_input not in AUDIO_INPUTS:
            raise ValueError(f"data.audio_input: '{audio_input}' is not one of {', '.join(AUDIO_INPUTS)}")
        self.audio_input = audio_input
        self.paths = {"train": train, "val": val or test, "test": test}
        if not any(self.paths.values()):
            raise ValueError("data.train / data.val / data.test: give at least one manifest path")
        self.vocab = make_vocab(tokens)
        self.vocabulary = list(self.vocab.tokens)
        self.batch_size = batch_size
        self.workers = workers
        self.modalities = list(modalities)
        self.video_size = (int(video_size), int(video_size))
        self.crop_method = crop_method
        first = next(Path(p).expanduser() for p in self.paths.values() if p)
        self.cache_dir = cache_folder(cache_dir, first.parent / "mouth_cache")
        self.spec_augment = spec_augment_settings(spec_augment)
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
        from avtoolkit.roi import MouthCropper

        return MouthCropper(size=self.video_size, method=self.crop_method)

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            path = self.paths[split]
            if path is None or split in self.splits:
                continue
            manifest = read_manifest(Path(path).expanduser(), self.modalities, self.skip_bad_lines, vocab=self.vocab)
            if manifest.skipped:
                # The run's console shows avtoolkit's log records (a Python warning reached training.log only).
                log.warning("%s:\n  %s", manifest.summary(), "\n  ".join(manifest.skipped))
            self.manifests[split] = manifest
            train = split == "train"
            self.splits[split] = ManifestSpeech(
                manifest, self.modalities, self.video_size, self._cropper(), self.cache_dir,
                spec_augment=self.spec_augment if train else None,
                noise_snr_db=self.noise_snr_db if train else self.test_noise_snr_db,
                noise_prob=self.noise_prob if train else 1.0, seed=self.seed, train=train,
                noise_type=self.noise_type, babble_talkers=self.babble_talkers, vocab=self.vocab,
                audio_input=self.audio_input)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.splits:
            self.setup()
        if split not in self.splits:
            raise ValueError(f"data.{split}: no manifest given for the {split} split")
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.workers, collate_fn=collate,
                          persistent_workers=self.workers > 0)
