"""VoxCeleb2 on a small tree of real GRID clips: ``avtoolkit label`` writes a labels file with a tiny
random-weight audio model, and the voxceleb2 dataset reads it back (splits, problems, preparation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from corpus_trees import FAST, broken, place

from avtoolkit import build_model
from avtoolkit.cli.main import main as cli
from avtoolkit.data.text import CHARACTERS, normalize_text
from avtoolkit.datasets._sentences import hash_unit
from avtoolkit.datasets.voxceleb2 import LabelsError, read_labels
from avtoolkit.datasets.voxceleb2.datamodule import VoxCeleb2DataModule
from avtoolkit.inference.labelling import file_sha256
from avtoolkit.inference.transcriber import Transcriber
from avtoolkit.store import read_failed

#: dev speakers: with val_fraction 0.5 at least one falls on each side (checked below).
DEV = {"id00012": ("bbaf2n", "bbaf4p"), "id00015": ("bbal6n",), "id00020": ("bbal7s",), "id00023": ("bbal8p",)}
RECIPE = {
    "name": "vox_tiny_labeller",
    "model": {"encoders": {"audio": {"name": "audio_cnn", "channels": [8, 8], "hidden_dim": 32, "dropout": 0.0}},
              "backends": [{"name": "tcn", "channels": 32, "layers": 1, "kernel_size": 3, "dropout": 0.0}],
              "head": {"name": "ctc"}},
    "data": {"name": "voxceleb2", "crop_method": "fixed", "video_size": 32},
    "decoding": {"name": "greedy"},
}


@pytest.fixture(scope="module")
def vox(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("vox")
    root = folder / "vox2"
    for speaker, clips in DEV.items():
        for n, clip in enumerate(clips, 1):
            place(clip, root / "dev" / "mp4" / speaker / "5r0dWxy17C8" / f"{n:05d}.mp4")
    place("bbal9a", root / "test" / "mp4" / "id00017x" / "Bk2Tg1Ykc7o" / "00001.mp4")
    broken(root / "test" / "mp4" / "id00017x" / "Bk2Tg1Ykc7o" / "00002.mp4")
    torch.manual_seed(0)
    model = build_model(RECIPE).eval()
    with torch.no_grad():  # random weights, but never the blank: every clip gets a non-empty transcript
        model.head.proj.bias[0] = -50.0
    checkpoint = folder / "tiny.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {"recipe": RECIPE, "vocabulary": CHARACTERS, "task": "ctc", "version": "test"}}, checkpoint)
    labels = folder / "labels.tsv"
    code = cli(["label", str(root), "--checkpoint", str(checkpoint), "--output", str(labels), "--batch-size", "3"])
    return {"root": root, "checkpoint": checkpoint, "labels": labels, "code": code, "folder": folder}


def test_label_writes_what_the_model_transcribes_and_records_the_model(vox: dict) -> None:
    assert vox["code"] == 0
    labels = read_labels(vox["labels"])
    assert labels.model["sha256"] == file_sha256(vox["checkpoint"])
    assert labels.model["checkpoint"] == str(vox["checkpoint"].resolve())
    assert labels.model["recipe"] == "vox_tiny_labeller" and labels.model["decoding"]["name"] == "greedy"
    assert labels.model["modalities"] == ["audio"]
    asr = Transcriber.from_checkpoint(vox["checkpoint"])
    key = "dev/mp4/id00012/5r0dWxy17C8/00001"
    assert labels.transcripts[key] == normalize_text(asr.transcribe(audio=vox["root"] / f"{key}.mp4").transcript)
    assert len(labels.transcripts) == 6 and labels.problems == []  # every readable clip; the broken one is not
    failed = (vox["labels"].parent / "labels.tsv.failed.tsv").read_text()
    assert "test/mp4/id00017x/Bk2Tg1Ykc7o/00002\t" in failed
    assert not (vox["labels"].parent / "labels.tsv.partial").exists()


def test_the_dataset_reads_the_labels_with_speakers_held_out(vox: dict, tmp_path: Path) -> None:
    dm = VoxCeleb2DataModule(root=str(vox["root"]), labels=str(vox["labels"]), val_fraction=0.5,
                             cache_dir=str(tmp_path / "cache"), modalities=["audio", "video"], **FAST)
    layout = dm.layout()
    val_speakers = {c.key.split("/")[2] for c in layout.splits["val"]}
    assert val_speakers == {s for s in DEV if hash_unit(s) < 0.5} and 0 < len(val_speakers) < len(DEV)
    assert not val_speakers & {c.key.split("/")[2] for c in layout.splits["train"]}
    assert [c.key for c in layout.splits["test"]] == ["test/mp4/id00017x/Bk2Tg1Ykc7o/00001"]
    labels = read_labels(vox["labels"]).transcripts
    assert all(c.transcript == labels[c.key] for s in layout.splits.values() for c in s)
    assert dict(layout.problems) == {"test/mp4/id00017x/Bk2Tg1Ykc7o/00002": f"no label in {vox['labels']}"}
    dm.prepare_data()
    assert set(read_failed(dm.folder)) == {"test/mp4/id00017x/Bk2Tg1Ykc7o/00002"}
    with pytest.warns(UserWarning, match="left out by the layout reader"):
        dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["texts"] == [labels["test/mp4/id00017x/Bk2Tg1Ykc7o/00001"]]
    assert dm.describe()["labels_model"]["sha256"] == file_sha256(vox["checkpoint"])


def test_a_malformed_labels_line_is_reported_with_file_and_line(vox: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(vox["labels"].read_text() + "dev/mp4/id00012/5r0dWxy17C8/00002 no tab here\n")
    labels = read_labels(bad)
    line = len(bad.read_text().splitlines())
    assert labels.problems == [(f"{bad}:{line}", f"{bad}:{line}: expected 'clip key<TAB>transcript', got "
                                                 "'dev/mp4/id00012/5r0dWxy17C8/00002 no tab here'")]
    headless = tmp_path / "headless.tsv"
    headless.write_text("dev/mp4/id00012/5r0dWxy17C8/00001\thello\n")
    with pytest.raises(LabelsError, match=r"headless.tsv:1: not an avtoolkit labels file"):
        read_labels(headless)


def test_label_refuses_bad_input_with_exit_2_and_writes_nothing(vox: dict, tmp_path: Path, capsys) -> None:
    out = tmp_path / "l.tsv"
    assert cli(["label", str(tmp_path), "--checkpoint", str(vox["checkpoint"]), "--output", str(out)]) == 2
    assert "no VoxCeleb2 clips under" in capsys.readouterr().err
    assert cli(["label", str(vox["root"]), "--checkpoint", str(vox["checkpoint"]), "--output", str(out),
                "--modalities", "video"]) == 2
    assert "reads audio, not video" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_label_resumes_from_its_partial_file(vox: dict, tmp_path: Path) -> None:
    from avtoolkit.datasets.voxceleb2.labels import header
    from avtoolkit.inference.labelling import label_clips

    out = tmp_path / "l.tsv"
    first = read_labels(vox["labels"])
    key = "dev/mp4/id00012/5r0dWxy17C8/00001"
    # an interrupted run left one line behind (its text marked, so the test sees it was kept)
    (tmp_path / "l.tsv.partial").write_text(header(first.model) + f"{key}\tkept from before\n")
    clips = [(key, vox["root"] / f"{key}.mp4"), ("dev/mp4/id00015/5r0dWxy17C8/00001",
                                                 vox["root"] / "dev/mp4/id00015/5r0dWxy17C8/00001.mp4")]
    summary = label_clips(vox["checkpoint"], clips, out)
    assert summary.resumed == 1 and summary.labelled == 2
    assert read_labels(out).transcripts[key] == "kept from before"
    (tmp_path / "l.tsv.partial").write_text(header({**first.model, "sha256": "0" * 64}))
    with pytest.raises(ValueError, match="written by another model"):
        label_clips(vox["checkpoint"], clips, out)
    assert json.loads(out.read_text().splitlines()[1][len("# model: "):])["sha256"] == first.model["sha256"]
