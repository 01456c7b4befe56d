"""The synthetic demo corpus: real media the toolkit's readers decode, in sync, speaker-disjoint, reproducible."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from avtoolkit.data.media import read_audio, read_video
from avtoolkit.data.text import CharVocab, normalize_text
from avtoolkit.datasets.lrw.layout import read_duration
from avtoolkit.demo import SIZES, generate_corpus
from avtoolkit.roi import MouthCropper

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "corpus"
    generate_corpus(out, size="tiny", seed=0, workers=1)
    return out


def _manifest(corpus: Path, split: str) -> list[list[str]]:
    return [line.split("|") for line in (corpus / "sentences" / f"{split}.txt").read_text().splitlines()]


def test_lrw_clips_decode_as_lrw_does(corpus: Path) -> None:
    spec = SIZES["tiny"]
    words = json.loads((corpus / "corpus.json").read_text())["lrw_words"]
    assert sorted(p.name for p in (corpus / "lrw").iterdir() if p.is_dir()) == sorted(words)
    for split, per_word in zip(SPLITS, spec.lrw_clips):
        clips = sorted((corpus / "lrw" / words[0] / split).glob("*.mp4"))
        assert [c.name for c in clips] == [f"{words[0]}_{k:05d}.mp4" for k in range(1, per_word + 1)]
    clip = corpus / "lrw" / words[0] / "train" / f"{words[0]}_00001.mp4"
    frames, fps = read_video(clip)
    assert frames.shape == (29, 256, 256, 3) and fps == pytest.approx(25.0)
    audio = read_audio(clip)
    # 29 frames at 25 fps = 18560 samples; AAC pads the last frame of 1024 samples.
    assert 18560 <= len(audio) < 18560 + 1024
    assert np.sqrt(np.mean(audio**2)) > 0.01, "the clip's audio track is silent"
    duration = read_duration(clip.with_suffix(".txt"))
    assert duration is not None and 0.15 < duration < 1.0


def test_lrw_fixed_crop_lands_on_the_mouth(corpus: Path) -> None:
    """Inside LRW's fixed mouth box brightness changes as the lips open; above it, it does not."""
    mouth_change, forehead_change = [], []
    for clip in sorted((corpus / "lrw").glob("*/*/*.mp4")):
        frames, _ = read_video(clip, color="gray")
        frames = frames.astype(float)
        mouth_change.append(frames[:, 115:211, 79:175].mean(axis=(1, 2)).std())
        forehead_change.append(frames[:, 20:116, 79:175].mean(axis=(1, 2)).std())
    assert np.mean(mouth_change) > 2 * np.mean(forehead_change)


def test_sentence_manifests_are_readable_and_in_vocabulary(corpus: Path) -> None:
    vocab = CharVocab()
    for split, n in zip(SPLITS, SIZES["tiny"].sentences):
        rows = _manifest(corpus, split)
        assert len(rows) == n
        for audio_rel, video_rel, transcript in rows:
            assert normalize_text(transcript) == transcript and len(transcript.split()) == 6
            vocab.encode(transcript)  # raises on a character outside a-z, space, apostrophe
            base = corpus / "sentences"
            audio = read_audio(base / audio_rel)
            frames, fps = read_video(base / video_rel)
            assert fps == pytest.approx(25.0) and frames.shape[1:] == (128, 128, 3)
            assert len(audio) == len(frames) * 640, "audio and video lengths disagree"


def test_mouth_opens_when_the_audio_has_energy(corpus: Path) -> None:
    """Mouth-region darkness (open mouth) follows low-band audio energy, at lag 0 not shifted."""
    cropper = MouthCropper(size=(48, 48))

    def z(x: np.ndarray) -> np.ndarray:
        return (x - x.mean()) / (x.std() + 1e-9)

    opening, energy = [], []
    for split in SPLITS:
        for audio_rel, video_rel, _ in _manifest(corpus, split):
            frames, _ = read_video(corpus / "sentences" / video_rel)
            rois = cropper.crop(frames).astype(float)
            dark = (rois < 0.5 * np.median(rois)).mean(axis=(1, 2))
            audio = read_audio(corpus / "sentences" / audio_rel)
            n = len(frames)
            spec = np.abs(np.fft.rfft(audio[: n * 640].reshape(n, 640) * np.hanning(640), axis=1)) ** 2
            low = np.log(spec[:, :40].sum(axis=1) + 1e-8)  # below 1 kHz: voicing, vowels
            opening.append(z(dark))
            energy.append(z(low))

    def corr(lag: int) -> float:
        vals = []
        for d, e in zip(opening, energy):
            a = d[max(lag, 0) : len(d) + min(lag, 0)]
            b = e[max(-lag, 0) : len(e) + min(-lag, 0)]
            vals.append(np.corrcoef(a, b)[0, 1])
        return float(np.mean(vals))

    in_sync = corr(0)
    assert in_sync > 0.3
    assert in_sync > max(corr(-4), corr(4)) + 0.2, "mouth and audio are offset in time"


def test_splits_share_no_speakers(corpus: Path) -> None:
    summary = json.loads((corpus / "corpus.json").read_text())
    declared = {split: set(summary["speakers"][split]) for split in SPLITS}
    used: dict[str, set[str]] = {split: set() for split in SPLITS}
    for line in (corpus / "lrw" / "speakers.txt").read_text().splitlines():
        clip, speaker = line.split()
        used[clip.split("/")[1]].add(speaker)
    for split in SPLITS:
        used[split] |= {Path(a).name.split("_")[0] for a, _, _ in _manifest(corpus, split)}
        assert used[split] and used[split] <= declared[split]
    assert not used["train"] & used["test"]
    assert not used["train"] & used["val"]
    assert not used["val"] & used["test"]


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_the_same_corpus_whatever_the_worker_count(corpus: Path, tmp_path: Path) -> None:
    """Written again through the CLI with two processes: byte-identical files."""
    from avtoolkit.cli.main import main

    again = tmp_path / "again"
    assert main(["demo-data", str(again), "--size", "tiny", "--seed", "0", "--workers", "2"]) == 0
    assert _digest(again) == _digest(corpus)


def test_another_seed_gives_other_speech(tmp_path: Path) -> None:
    from avtoolkit.demo.corpus import _speakers
    from avtoolkit.demo.speech import synthesize

    a = _speakers(0, SIZES["tiny"])["train"][0]
    b = _speakers(1, SIZES["tiny"])["train"][0]
    assert a != b
    one = synthesize(["bin", "blue"], a, np.random.default_rng(0)).audio
    two = synthesize(["bin", "blue"], b, np.random.default_rng(0)).audio
    assert len(one) != len(two) or not np.allclose(one, two)


def test_unknown_size_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="huge.*tiny, small, medium"):
        generate_corpus(tmp_path, size="huge")
