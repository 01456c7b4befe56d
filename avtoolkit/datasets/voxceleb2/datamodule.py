"""Dataset ``voxceleb2``: VoxCeleb2 clips with machine transcripts from a labels file."""

from __future__ import annotations

from typing import Literal

from avtoolkit.datasets._sentences import CorpusLayout, SentenceCorpus, common_args
from avtoolkit.datasets.voxceleb2.labels import read_labels
from avtoolkit.datasets.voxceleb2.layout import VOXCELEB2_HELP, read_voxceleb2
from avtoolkit.errors import DatasetNotFoundError
from avtoolkit.registry.kinds import DATASETS


@DATASETS.register("voxceleb2")
class VoxCeleb2DataModule(SentenceCorpus):
    """VoxCeleb2: ``dev`` for training (held-out speakers for validation), ``test`` for testing, transcripts from ``labels``.

    The labels file records the model that made it; :attr:`labels_model` holds that record
    and :meth:`describe` shows it, so a run's log says what its transcripts came from.

    Args:
        root: the VoxCeleb2 folder (``dev/mp4/...``, ``test/mp4/...``).
        labels: the labels file from ``avtoolkit label``.
        val_fraction: share of ``dev`` speakers held out for validation (by speaker-id hash).
        batch_size: utterances per batch.
        workers: dataloader worker processes.
        modalities: ``[audio, video]``, ``[audio]`` or ``[video]``.
        video_size: side of the mouth ROI given to the model.
        roi_size: side of the cached ROIs.
        crop_method: ``face``, ``fixed`` or ``landmarks``.
        cache_dir: prepared clips (default ``~/.cache/avtoolkit/voxceleb2_<root name>_<hash>``).
        prepare_workers: processes for preparing (default: every core).
        spec_augment: SpecAugment in training: ``true``, a mapping or ``false``.
        noise_snr_db: training noise SNR (a number or ``[low, high]``); ``null``: clean.
        noise_prob: fraction of training items that get noise.
        test_noise_snr_db: noise at this SNR on validation and test audio.
        noise_type: ``white`` or ``babble``.
        babble_talkers: clips summed into one babble noise.
        max_clips: at most this many clips per split, by key hash.
        seed: evaluation noise seed.
    """

    corpus = "voxceleb2"
    help = VOXCELEB2_HELP

    def __init__(self, root: str | None = None, labels: str | None = None, val_fraction: float = 0.01,
                 batch_size: int = 16, workers: int = 2, modalities: list[str] = ["video"], video_size: int = 88,
                 roi_size: int = 96, crop_method: Literal["face", "fixed", "landmarks"] = "landmarks",
                 cache_dir: str | None = None, prepare_workers: int | None = None, spec_augment: bool | dict = True,
                 noise_snr_db: float | list[float] | None = None, noise_prob: float = 0.5,
                 test_noise_snr_db: float | None = None, noise_type: Literal["white", "babble", "mixed"] = "babble",
                 babble_talkers: int = 4, max_clips: dict[str, int] | None = None, seed: int = 0) -> None:
        super().__init__(root, **common_args(locals()))
        if labels is None:
            raise DatasetNotFoundError(f"data.labels is not set: VoxCeleb2 has no transcripts. {VOXCELEB2_HELP}")
        self.labels = read_labels(labels)
        self.labels_model = self.labels.model
        self.val_fraction = val_fraction

    def read_layout(self) -> CorpusLayout:
        return read_voxceleb2(self.root, self.labels, self.val_fraction)

    def describe(self) -> dict:
        return super().describe() | {"labels": str(self.labels.path), "labels_model": self.labels_model}
