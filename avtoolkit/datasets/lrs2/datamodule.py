"""Dataset ``lrs2``: LRS2 sentences (audio, mouth ROIs, characters) from its own layout and split lists."""

from __future__ import annotations

from typing import Literal

from avtoolkit.datasets._sentences import CorpusLayout, SentenceCorpus, check_segment_seconds, common_args
from avtoolkit.datasets.lrs2.layout import LRS2_HELP, read_lrs2
from avtoolkit.registry.kinds import DATASETS


@DATASETS.register("lrs2")
class LRS2DataModule(SentenceCorpus):
    """LRS2: ``train.txt`` (+ the pretrain set cut at word timings), ``val.txt``, ``test.txt``; the official splits.

    Args:
        root: the LRS2 folder (``main/``, ``pretrain/``, the four lists).
        use_pretrain: add ``pretrain.txt``'s utterances to training.
        segment_seconds: cut pretrain utterances longer than this at word timings into
            segments of at most this many seconds (auto_avsr uses 16 or 24); ``null``: whole.
        batch_size: utterances per batch.
        workers: dataloader worker processes.
        modalities: ``[audio, video]``, ``[audio]`` or ``[video]``.
        video_size: side of the mouth ROI given to the model.
        roi_size: side of the cached ROIs.
        crop_method: ``face``, ``fixed`` or ``landmarks`` (:class:`~avtoolkit.roi.crop.MouthCropper`).
        cache_dir: prepared clips (default ``~/.cache/avtoolkit/lrs2_<root name>_<hash>``).
        prepare_workers: processes for preparing (default: every core).
        spec_augment: SpecAugment in training: ``true``, a mapping or ``false``.
        noise_snr_db: training noise SNR (a number or ``[low, high]``); ``null``: clean.
        noise_prob: fraction of training items that get noise.
        test_noise_snr_db: noise at this SNR on validation and test audio.
        noise_type: ``white`` or ``babble`` (other training clips summed).
        babble_talkers: clips summed into one babble noise.
        max_clips: at most this many clips per split (``{train: 1000}``), by key hash.
        seed: evaluation noise seed.
    """

    corpus = "lrs2"
    help = LRS2_HELP

    def __init__(self, root: str | None = None, use_pretrain: bool = True, segment_seconds: float | None = 16.0,
                 batch_size: int = 16, workers: int = 2, modalities: list[str] = ["video"], video_size: int = 88,
                 roi_size: int = 96, crop_method: Literal["face", "fixed", "landmarks"] = "landmarks",
                 cache_dir: str | None = None, prepare_workers: int | None = None, spec_augment: bool | dict = True,
                 noise_snr_db: float | list[float] | None = None, noise_prob: float = 0.5,
                 test_noise_snr_db: float | None = None, noise_type: Literal["white", "babble", "mixed"] = "babble",
                 babble_talkers: int = 4, max_clips: dict[str, int] | None = None, seed: int = 0) -> None:
        super().__init__(root, **common_args(locals()))
        self.use_pretrain = use_pretrain
        self.segment_seconds = check_segment_seconds(segment_seconds)

    def read_layout(self) -> CorpusLayout:
        return read_lrs2(self.root, self.use_pretrain, self.segment_seconds)
