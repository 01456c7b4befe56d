"""``ManifestSpeech``: a manifest's utterances as model inputs (log-mel frames or waveform, mouth crops, token ids)."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor
from torch.utils.data import Dataset

from avtoolkit.data.noise import NoisyLogMel
from avtoolkit.data.text import CharVocab
from avtoolkit.data.video import video_tensor
from avtoolkit.datasets.manifest.reader import Manifest, Utterance

log = logging.getLogger(__name__)


class _ManifestTalkers:
    """Babble for a manifest: its other utterances with audio (a :class:`~avtoolkit.data.noise.Talkers`)."""

    missing = "other utterances in the manifest"

    def __init__(self, utterances: list[Utterance]) -> None:
        self.utterances = utterances

    def others(self, utt: Utterance) -> list[Utterance]:
        return [u for u in self.utterances if u.audio is not None and u.audio != utt.audio]

    def load(self, utt: Utterance) -> Tensor:
        from avtoolkit.data.media import read_audio

        return torch.from_numpy(read_audio(utt.audio, sample_rate=16000))


class ManifestSpeech(Dataset):
    """Utterances of one manifest as model inputs (log-mel frames or waveform, mouth crops, token ids).

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
        audio_input: what the model's audio encoder reads: ``log_mel`` or ``waveform``
            (:class:`~avtoolkit.data.audio_input.AudioInput`).
    """

    def __init__(self, manifest: Manifest, modalities: list[str], video_size: tuple[int, int], cropper: Any,
                 cache_dir: Path | None, spec_augment: Mapping[str, Any] | None = None,
                 noise_snr_db: float | list[float] | None = None, noise_prob: float = 1.0,
                 seed: int = 0, train: bool = False, noise_type: str = "white",
                 babble_talkers: int = 4, vocab: CharVocab | None = None, audio_input: str = "log_mel") -> None:
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
        self.vocab = vocab or CharVocab()
        self.audio = NoisyLogMel(noise_snr_db, noise_prob, noise_type, babble_talkers, spec_augment,
                                 talkers=_ManifestTalkers(self.utterances), audio_input=audio_input)

    def __len__(self) -> int:
        return len(self.utterances)

    def _generator(self, index: int) -> torch.Generator | None:
        if self.train:
            return None  # the global RNG: DataLoader seeds each worker differently
        key = zlib.crc32(f"{self.seed}|{self.utterances[index].id}".encode())
        return torch.Generator().manual_seed(key)

    def audio_features(self, utt: Utterance, g: torch.Generator | None) -> Tensor:
        """The model's audio input of an utterance (log-mel ``[T, 40]`` or waveform ``[S]``), with noise and masking as configured."""
        from avtoolkit.data.media import read_audio

        assert utt.audio is not None
        return self.audio.features(read_audio(utt.audio, sample_rate=16000), utt, g)

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt = self.utterances[index]
        g = self._generator(index)
        item: dict[str, Any] = {"id": utt.id, "text": utt.transcript, "source": f"{self.manifest_path}:{utt.line}",
                                "targets": torch.tensor(self.vocab.encode(utt.transcript), dtype=torch.long)}
        try:
            if "audio" in self.modalities:
                item["audio"] = self.audio_features(utt, g)
            if "video" in self.modalities:
                from avtoolkit.roi.load import load_mouth_rois

                assert utt.video is not None
                item["video"] = video_tensor(load_mouth_rois(utt.video, self.cache_dir, self.cropper),
                                             self.video_size)
        except Exception as exc:
            exc.add_note(f"while loading utterance '{utt.id}' (line {utt.line} of the manifest)")
            raise
        if "audio" in item and "video" in item and index not in self._length_warned:
            from avtoolkit.data.media import VIDEO_FPS, warn_if_lengths_differ

            audio_s = self.audio.input.seconds(len(item["audio"]))
            if warn_if_lengths_differ(audio_s, len(item["video"]) / VIDEO_FPS, item["source"]):
                self._length_warned.add(index)
        return item
