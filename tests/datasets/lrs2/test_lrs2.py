"""The lrs2 dataset on a small LRS2 tree made of real GRID clips: lists, transcripts, segments, preparation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpus_trees import FAST, broken, lrs_text, place, timed_words

from avtoolkit.datasets.lrs2 import read_lrs2
from avtoolkit.datasets.lrs2.datamodule import LRS2DataModule
from avtoolkit.store import REPORT_NAME, read_failed


def make_lrs2(root: Path) -> Path:
    """main/ (train, val, test), pretrain/, the four lists; one broken clip, one malformed transcript, one bad list line."""
    main = {"train": [("6300370419826092098/00001", "bbaf2n"), ("6300370419826092098/00002", "bbas1s")],
            "val": [("6300370419826092099/00001", "bbaf4p")],
            "test": [("6300370419826092100/00001", "bbas3a")]}
    for split, entries in main.items():
        for entry, clip in entries:
            video = place(clip, root / "main" / f"{entry}.mp4")
            video.with_suffix(".txt").write_text(lrs_text(clip, table=False))
    # the malformed transcript: a timing row that is not 'WORD START END [SCORE]' on line 5
    bad = place("bbal6n", root / "main" / "6300370419826092101" / "00001.mp4").with_suffix(".txt")
    bad.write_text("Text:  BIN BLUE\nConf:  4\n\nWORD START END ASDSCORE\nBIN zero 0.5 2.0\n")
    # the broken clip, listed in test.txt with a suffix as the official list has
    broken(root / "main" / "6300370419826092102" / "00001.mp4").with_suffix(".txt").write_text(
        lrs_text("bbal7s", table=False))
    video = place("bbal8p", root / "pretrain" / "5535415699068794046" / "00001.mp4")
    video.with_suffix(".txt").write_text(lrs_text("bbal8p", table=True))
    (root / "train.txt").write_text("6300370419826092098/00001\n6300370419826092098/00002\n6300370419826092101/00001\n"
                                    "not an entry\n")
    (root / "val.txt").write_text("6300370419826092099/00001\n")
    (root / "test.txt").write_text("6300370419826092100/00001 NF\n6300370419826092102/00001 MV\n")
    (root / "pretrain.txt").write_text("5535415699068794046/00001\n")
    return root


@pytest.fixture
def lrs2_root(tmp_path: Path) -> Path:
    return make_lrs2(tmp_path / "lrs2")


def test_splits_follow_the_official_lists_and_long_pretrain_utterances_are_cut(lrs2_root: Path) -> None:
    layout = read_lrs2(lrs2_root, segment_seconds=1.0)
    keys = {s: [c.key for c in clips] for s, clips in layout.splits.items()}
    assert keys["val"] == ["main/6300370419826092099/00001"]
    assert keys["test"] == ["main/6300370419826092100/00001", "main/6300370419826092102/00001"]  # ' NF', ' MV' dropped
    main_train = [k for k in keys["train"] if k.startswith("main/")]
    assert main_train == ["main/6300370419826092098/00001", "main/6300370419826092098/00002"]
    assert layout.splits["train"][0].transcript == "bin blue at f two now"
    segments = [c for c in layout.splits["train"] if c.key.startswith("pretrain/")]
    words = timed_words("bbal8p")
    assert len(segments) > 1, "a 6-word GRID sentence over 1 s must be cut"
    assert " ".join(s.transcript for s in segments) == " ".join(w for w, _, _ in words).lower()
    starts, ends = {round(s, 2) for _, s, _ in words}, {round(e, 2) for _, _, e in words}
    for seg in segments:
        assert seg.end - seg.start <= 1.0 + 1e-9 and seg.start in starts and seg.end in ends  # cut at word timings
    first = segments[0]
    assert first.key == f"pretrain/5535415699068794046/00001_t{round(first.start * 1000)}-{round(first.end * 1000)}"


def test_whole_pretrain_utterances_without_segment_limit(lrs2_root: Path) -> None:
    layout = read_lrs2(lrs2_root, segment_seconds=None)
    pre = [c for c in layout.splits["train"] if c.key.startswith("pretrain/")]
    assert [(c.start, c.end) for c in pre] == [(None, None)]
    assert len([c for c in read_lrs2(lrs2_root, use_pretrain=False).splits["train"]
                if c.key.startswith("pretrain/")]) == 0


def test_malformed_transcript_and_list_line_are_reported_with_file_and_line(lrs2_root: Path) -> None:
    problems = dict(read_lrs2(lrs2_root).problems)
    bad = lrs2_root / "main" / "6300370419826092101" / "00001.txt"
    assert problems["main/6300370419826092101/00001"].startswith(f"{bad}:5: expected 'WORD START END [ASDSCORE]'")
    assert problems["train.txt:4"].startswith(f"{lrs2_root / 'train.txt'}:4: expected '<video id>/<n>'")


def test_not_lrs2_is_a_clear_error(tmp_path: Path) -> None:
    from avtoolkit.errors import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="no LRS2 under .*main/, pretrain/ and train.txt"):
        LRS2DataModule(root=str(tmp_path), **FAST).prepare_data()
    with pytest.raises(ValueError, match="data.segment_seconds: -1 is not positive"):
        LRS2DataModule(root=str(tmp_path), segment_seconds=-1, **FAST)
    assert list(tmp_path.iterdir()) == []  # nothing written by a refused run


def test_prepare_reports_the_broken_clip_and_batches_come_from_the_segments(lrs2_root: Path, tmp_path: Path) -> None:
    dm = LRS2DataModule(root=str(lrs2_root), segment_seconds=1.0, modalities=["audio", "video"],
                        cache_dir=str(tmp_path / "cache"), **FAST)
    dm.prepare_data()
    failed = read_failed(dm.folder)
    assert (dm.folder / REPORT_NAME).is_file()
    assert list((dm.folder / "sheets").glob("*.png")), "contact sheets of the crops beside the report"
    assert "main/6300370419826092102/00001" in failed  # the broken clip, with the decoder's reason
    assert "main/6300370419826092101/00001" in failed and "train.txt:4" in failed  # the reader's problems too
    assert dm.prepare_report.prepared == len([c for s in dm.layout().splits.values() for c in s]) - 1
    with pytest.warns(UserWarning) as caught:
        dm.setup()
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("lrs2 test: 1 of 2 clips are not prepared and are left out") for m in messages)
    assert any(m.startswith("lrs2: 2 clips left out by the layout reader") for m in messages)
    seg = next(c for c in dm.clips["train"] if c.start is not None)
    arrays = dm.store().read(seg.key).arrays
    frames = len(arrays["rois"])
    assert abs(frames - (seg.end - seg.start) * 25) <= 2  # the segment's frames only, not the 3 s clip
    assert abs(len(arrays["audio"]) / 16000 - frames / 25) < 0.05
    assert np.abs(arrays["audio"]).max() > 1000  # real speech, not silence
    batch = next(iter(dm.val_dataloader()))
    assert batch["video"].shape[-2:] == (32, 32) and batch["audio"].shape[-1] == 40
    # a second run prepares nothing again
    again = LRS2DataModule(root=str(lrs2_root), segment_seconds=1.0, cache_dir=str(tmp_path / "cache"), **FAST)
    again.prepare_data()
    assert again.prepare_report.prepared == 0 and again.prepare_report.skipped == dm.prepare_report.prepared
