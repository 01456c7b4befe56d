"""Manifests and the ``manifest`` dataset: bad lines, real media, GRID clips, augmentation."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from avtoolkit.datasets.manifest import ManifestError, read_manifest
from avtoolkit.datasets.manifest.datamodule import ManifestDataModule

GRID = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid"
needs_grid = pytest.mark.skipif(not (GRID / "video").is_dir(),
                                reason=f"GRID sample clips not found at {GRID} (shared test data)")


def write_wav(path: Path, seconds: float, hz: float) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


def write_mp4(path: Path, frames: int, size: int = 96) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for t in range(frames):
            image = np.full((size, size, 3), 40, np.uint8)
            image[:, (3 * t) % size:(3 * t) % size + 12] = 220  # a moving bright bar
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    write_wav(media / "one.wav", 1.0, 220.0)
    write_wav(media / "two.wav", 0.6, 440.0)
    write_mp4(media / "one.mp4", 25)
    write_mp4(media / "two.mp4", 15)
    (tmp_path / "train.txt").write_text("# audio|video|transcript\n"
                                        "media/one.wav|media/one.mp4|Bin BLUE, at F!\n\n"
                                        "media/two.wav|media/two.mp4|don\u2019t stop\n")
    return tmp_path


def test_bad_lines_name_file_and_line(corpus: Path) -> None:
    cases = {
        "media/one.wav|media/one.mp4": "expected 3 fields",
        "media/one.wav|media/missing.mp4|hello": "video file not found",
        "media/one.wav|media/one.mp4|  ?! ": "empty transcript",
        "media/one.wav|media/one.mp4|place 2 now": "outside the vocabulary '2'",
    }
    for line, reason in cases.items():
        path = corpus / "bad.txt"
        path.write_text("media/one.wav|media/one.mp4|fine\n" + line + "\n")
        with pytest.raises(ManifestError, match=rf"bad\.txt:2: .*{reason}"):
            read_manifest(path)


def test_skip_bad_lines_reports_every_skip(corpus: Path, caplog) -> None:
    path = corpus / "mixed.txt"
    path.write_text("media/one.wav|media/one.mp4|fine\nmedia/x.wav|media/one.mp4|a\nonly|two\n")
    manifest = read_manifest(path, skip_bad_lines=True)
    assert len(manifest) == 1 and len(manifest.skipped) == 2
    assert manifest.skipped[0].endswith("mixed.txt:2: audio file not found: " + str(corpus / "media" / "x.wav"))
    dm = ManifestDataModule(train=str(path), skip_bad_lines=True, crop_method="fixed")
    with caplog.at_level("WARNING", logger="avtoolkit"):  # avtoolkit's log: the run's console and training.log
        dm.setup()
    assert re.search(r"1 utterances, 2 bad lines skipped[\s\S]*mixed.txt:3", caplog.text), caplog.text
    assert len(dm.splits["train"]) == 1 and len(dm.manifests["train"].skipped) == 2


def test_audio_only_manifest_needs_no_video(corpus: Path) -> None:
    (corpus / "audio.txt").write_text("media/one.wav||bin blue\n")
    assert read_manifest(corpus / "audio.txt", modalities=["audio"]).utterances[0].video is None
    with pytest.raises(ManifestError, match="audio.txt:1: empty video path"):
        read_manifest(corpus / "audio.txt")


def test_batches_from_written_wav_and_mp4(corpus: Path) -> None:
    dm = ManifestDataModule(train=str(corpus / "train.txt"), test=str(corpus / "train.txt"), batch_size=2,
                            crop_method="fixed", cache_dir=str(corpus / "cache"))
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["texts"] == ["bin blue at f", "don't stop"]
    assert batch["audio"].shape == (2, 101, 40) and batch["audio_lengths"].tolist() == [101, 61]
    assert batch["video"].shape == (2, 25, 1, 64, 64) and batch["video_lengths"].tolist() == [25, 15]
    assert batch["target_lengths"].tolist() == [13, 10]
    assert batch["video"][1, 15:].abs().max() == 0  # padding
    # The 220 Hz and 440 Hz tones land in different mel bands.
    assert batch["audio"][0, :90].mean(0).argmax() < batch["audio"][1, :55].mean(0).argmax()
    assert list((corpus / "cache").glob("*.npz"))  # crops cached on disk
    assert dm.vocabulary[0] == "<blank>" and len(dm.vocabulary) == 29


def test_evaluation_noise_is_reproducible_and_training_noise_is_not(corpus: Path) -> None:
    manifest = str(corpus / "train.txt")
    clean = ManifestDataModule(test=manifest, crop_method="fixed", modalities=["audio"])
    noisy = ManifestDataModule(test=manifest, crop_method="fixed", modalities=["audio"], test_noise_snr_db=0.0)
    clean.setup(), noisy.setup()
    a, b, c = clean.splits["test"][0]["audio"], noisy.splits["test"][0]["audio"], noisy.splits["test"][0]["audio"]
    assert torch.equal(b, c) and (a - b).abs().mean() > 1.0
    train = ManifestDataModule(train=manifest, crop_method="fixed", modalities=["audio"], noise_snr_db=[0, 10],
                               noise_prob=1.0)
    train.setup()
    x, y = train.splits["train"][0]["audio"], train.splits["train"][0]["audio"]
    assert not torch.equal(x, y) and x.shape == y.shape == (101, 40)


@needs_grid
def test_grid_clips_give_audio_and_mouth_crops(tmp_path: Path) -> None:
    rows = [r.split("\t") for r in (GRID / "transcripts.tsv").read_text().splitlines()[1:3]]
    (tmp_path / "grid.txt").write_text("".join(f"{GRID}/video/{n}|{GRID}/video/{n}|{t}\n" for n, t in rows))
    dm = ManifestDataModule(test=str(tmp_path / "grid.txt"), batch_size=2, cache_dir=str(tmp_path / "cache"))
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["ids"] == ["bbaf2n", "brbk7n"] and batch["texts"][0] == "bin blue at f two now"
    # 3 s of the .mpg's audio track at 100 frames/s, and its 75 video frames.
    assert abs(int(batch["audio_lengths"][0]) - 300) <= 3 and batch["video_lengths"].tolist() == [75, 75]
    assert batch["audio"][0].std() > 1.0  # real speech energy, not silence
    assert batch["video"].shape[2:] == (1, 64, 64) and batch["video"].std() > 0.1
