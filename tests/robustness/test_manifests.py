"""Manifests as users write them: a byte-order mark, Latin-1 bytes, a ``|`` in a file name,
transcripts too long for CTC, and skipped lines that must reach the console."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from avtoolkit.cli.main import main
from avtoolkit.datasets.manifest import ManifestError, read_manifest
from avtoolkit.datasets.manifest.datamodule import ManifestDataModule
from avtoolkit.engine.rundir import run_logging
from avtoolkit.models.heads.ctc import CTCHead


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    with wave.open(str(tmp_path / "a.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(np.zeros(1600, "<i2").tobytes())
    np.save(tmp_path / "a.npy", np.zeros((4, 8, 8), np.uint8))
    return tmp_path


def test_a_byte_order_mark_is_not_part_of_the_first_path(folder: Path):
    (folder / "bom.txt").write_bytes("\ufeffa.wav|a.npy|bin blue\n".encode("utf-8"))
    assert read_manifest(folder / "bom.txt").utterances[0].audio == folder / "a.wav"


def test_latin1_bytes_name_the_file_and_line(folder: Path, capsys):
    (folder / "latin.txt").write_bytes("a.wav|a.npy|bin blue\na.wav|a.npy|caf\u00e9 now\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin.txt:2: not UTF-8 \(byte 0xe9 at column 16\)"):
        read_manifest(folder / "latin.txt")
    # the same through a command: one line, exit 2 (no checkpoint is read before the manifest)
    before = (folder / "latin.txt").read_bytes()
    assert main(["run", "recipes/avasr_audio_only.yaml", f"data.train={folder / 'latin.txt'}",
                 f"data.val={folder / 'latin.txt'}", f"data.test={folder / 'latin.txt'}",
                 "--run-dir", str(folder / "run")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{folder / 'latin.txt'}:2: not UTF-8" in err, err
    assert (folder / "latin.txt").read_bytes() == before


def test_a_pipe_in_a_file_name_is_escaped(folder: Path):
    (folder / "a|b.wav").write_bytes((folder / "a.wav").read_bytes())
    (folder / "raw.txt").write_text("a|b.wav|a.npy|bin blue\n")
    with pytest.raises(ManifestError, match=r"raw.txt:1: expected 3 fields .* found 4 \(a '\|' inside a file "
                                            r"name is written '\\\|'\)"):
        read_manifest(folder / "raw.txt")
    (folder / "escaped.txt").write_text("a\\|b.wav|a.npy|bin blue\n")
    assert read_manifest(folder / "escaped.txt").utterances[0].audio == folder / "a|b.wav"


def test_skipped_lines_reach_the_console_and_the_log(folder: Path, capsys):
    (folder / "mixed.txt").write_text("a.wav|a.npy|bin blue\nmissing.wav|a.npy|bin\na.wav|a.npy|f 2\n")
    dm = ManifestDataModule(train=str(folder / "mixed.txt"), skip_bad_lines=True, crop_method="fixed")
    with run_logging(folder / "training.log"):
        dm.setup()
    err = capsys.readouterr().err
    for text in (err, (folder / "training.log").read_text()):
        assert "1 utterances, 2 bad lines skipped" in text and "mixed.txt:2" in text and "mixed.txt:3" in text


def test_a_transcript_ctc_cannot_align_is_reported_with_its_manifest_line(caplog):
    from avtoolkit.data.text import CharVocab

    vocab = CharVocab()
    texts = ["hello", "hi"]  # "hello" needs 6 frames (5 letters and a blank between the two l's)
    ids = [torch.tensor(vocab.encode(t)) for t in texts]
    batch = {"targets": torch.nn.utils.rnn.pad_sequence(ids, batch_first=True),
             "target_lengths": torch.tensor([len(i) for i in ids]), "ids": ["u1", "u2"],
             "sources": ["train.txt:4", "train.txt:5"]}
    head = CTCHead(input_dim=4)
    with caplog.at_level(logging.WARNING):
        head(torch.randn(2, 5, 4), torch.tensor([5, 5]), batch)
        head(torch.randn(2, 5, 4), torch.tensor([5, 5]), batch)  # once per utterance, not once per epoch
    assert caplog.text.count("train.txt:4: utterance 'u1'") == 1, caplog.text
    assert "needs 6 CTC frames but the model gives 5" in caplog.text and "u2" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        CTCHead(input_dim=4)(torch.randn(2, 6, 4), torch.tensor([6, 6]), batch)
    assert caplog.text == ""


def test_a_line_whose_audio_and_video_lengths_differ_is_named_once(folder: Path, caplog):
    np.save(folder / "long.npy", np.zeros((100, 8, 8), np.uint8))  # 4 s of video beside 0.1 s of audio
    (folder / "mix.txt").write_text("a.wav|a.npy|bin blue\na.wav|long.npy|bin red\n")
    dm = ManifestDataModule(train=str(folder / "mix.txt"), crop_method="fixed", video_size=8)
    dm.setup()
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            dm.splits["train"][0], dm.splits["train"][1]
    assert caplog.text.count(f"{folder / 'mix.txt'}:2: the audio lasts 0.1") == 1, caplog.text
    assert "the video 4.00 s" in caplog.text and "mix.txt:1" not in caplog.text
