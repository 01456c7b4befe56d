"""The lrs3 dataset on a small LRS3 tree made of real GRID clips: subsets, the validation hold-out, segments."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus_trees import CLIP_IDS, FAST, broken, lrs_text, place

from avtoolkit.datasets._sentences import hash_unit
from avtoolkit.datasets.lrs3 import read_lrs3
from avtoolkit.datasets.lrs3.datamodule import LRS3DataModule
from avtoolkit.store import read_failed

#: trainval video ids: two of them fall under a 0.5 validation share by id hash, two above.
TRAINVAL = ("0akiEFwtkyA", "0d6iSvF1UmA", "1LLjgHBbqMs", "2X5aMiMOTxk")


def make_lrs3(root: Path) -> Path:
    """pretrain/, trainval/ (two utterances per video), test/; one broken clip, one malformed transcript."""
    clips = iter(CLIP_IDS)
    for video_id in TRAINVAL:
        for n in ("00001", "00002"):
            clip = next(clips)
            place(clip, root / "trainval" / video_id / f"{n}.mp4").with_suffix(".txt").write_text(
                lrs_text(clip, table=True, ref=f"https://www.youtube.com/watch?v={video_id}"))
    place("bbaz4n", root / "pretrain" / "00j9bKdiOjk" / "00001.mp4").with_suffix(".txt").write_text(
        lrs_text("bbaz4n", table=True, ref="x"))
    place("bbaszn", root / "test" / "0Fi83BHQsMA" / "00002.mp4").with_suffix(".txt").write_text(
        lrs_text("bbaszn", table=True, ref="y"))
    broken(root / "test" / "0Fi83BHQsMA" / "00003.mp4").with_suffix(".txt").write_text(
        lrs_text("bbaf2n", table=True, ref="y"))
    # malformed: the word table ends before it starts on line 6
    (root / "test" / "0Fi83BHQsMA" / "00004.txt").write_text(
        "Text:  BIN BLUE\nConf:  3\nRef:   z\n\nWORD START END ASDSCORE\nBIN 0.90 0.50 2.0\n")
    place("bbaf4p", root / "test" / "0Fi83BHQsMA" / "00004.mp4")
    return root


@pytest.fixture
def lrs3_root(tmp_path: Path) -> Path:
    return make_lrs3(tmp_path / "lrs3")


def test_validation_is_a_deterministic_hold_out_of_trainval_videos(lrs3_root: Path) -> None:
    layout = read_lrs3(lrs3_root, segment_seconds=None, val_fraction=0.5)
    videos = {s: {c.key.split("/")[1] for c in clips if c.key.startswith("trainval/")} for s, clips in layout.splits.items()}
    expected_val = {v for v in TRAINVAL if hash_unit(v) < 0.5}
    assert videos["val"] == expected_val and 0 < len(expected_val) < len(TRAINVAL)
    assert videos["train"] == set(TRAINVAL) - expected_val  # no talk on both sides
    assert len(layout.splits["val"]) == 2 * len(expected_val)  # every utterance of a held-out talk
    assert [c.key for c in read_lrs3(lrs3_root, val_fraction=0.5).splits["val"]] == \
           [c.key for c in read_lrs3(lrs3_root, val_fraction=0.5).splits["val"]]
    assert "00j9bKdiOjk" in {c.key.split("/")[1] for c in layout.splits["train"]}  # pretrain trains
    assert read_lrs3(lrs3_root, val_fraction=0.0).splits["val"] == []


def test_training_utterances_are_cut_at_word_timings_but_test_stays_whole(lrs3_root: Path) -> None:
    layout = read_lrs3(lrs3_root, segment_seconds=1.0, val_fraction=0.0)
    train = layout.splits["train"]
    assert train and all(c.start is not None and c.end - c.start <= 1.0 + 1e-9 for c in train)
    whole = {c.key.rsplit("_t", 1)[0] for c in train}
    assert len(whole) == len(TRAINVAL) * 2 + 1 and len(train) > len(whole)
    test = layout.splits["test"]
    assert [(c.key, c.start) for c in test] == [("test/0Fi83BHQsMA/00002", None), ("test/0Fi83BHQsMA/00003", None)]


def test_malformed_transcript_is_reported_with_file_and_line(lrs3_root: Path) -> None:
    problems = dict(read_lrs3(lrs3_root).problems)
    bad = lrs3_root / "test" / "0Fi83BHQsMA" / "00004.txt"
    assert problems == {"test/0Fi83BHQsMA/00004": f"{bad}:6: word 'BIN' spans 0.9-0.5 s (end before start, or a "
                                                  "negative time)"}


def test_prepare_reports_the_broken_clip_and_loads_the_rest(lrs3_root: Path, tmp_path: Path) -> None:
    dm = LRS3DataModule(root=str(lrs3_root), segment_seconds=1.0, val_fraction=0.5, modalities=["video"],
                        cache_dir=str(tmp_path / "cache"), max_clips={"train": 3}, **FAST)
    dm.prepare_data()
    failed = read_failed(dm.folder)
    assert set(failed) == {"test/0Fi83BHQsMA/00003", "test/0Fi83BHQsMA/00004"}
    assert "could not open it as a video" in failed["test/0Fi83BHQsMA/00003"]
    with pytest.warns(UserWarning):
        dm.setup()
    assert len(dm.clips["train"]) == 3 and len(dm.clips["test"]) == 1
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape[0] == 2 and "targets" in batch


def test_prepare_into_shards_in_two_parts_reports_the_broken_clip(lrs3_root: Path, tmp_path: Path) -> None:
    import numpy as np

    from avtoolkit.store import ShardClipStore

    def dm() -> LRS3DataModule:
        return LRS3DataModule(root=str(lrs3_root), segment_seconds=1.0, val_fraction=0.5, modalities=["video"],
                              cache_dir=str(tmp_path / "cache"), max_clips={"train": 3}, **FAST)

    for part in ((1, 2), (2, 2)):
        m = dm()
        m.store_format, m.prepare_part = "shards", part
        m.prepare_data()
    m = dm()
    m.store_format, m.prepare_index_only = "shards", True
    m.prepare_data()
    test = ShardClipStore(m.folder / "shards" / "test")
    assert test.keys() == ["test/0Fi83BHQsMA/00002"]
    clip = test.read("test/0Fi83BHQsMA/00002")
    assert clip.meta["text"] == m.layout().splits["test"][0].transcript and clip.arrays["rois"].dtype == np.uint8
    assert clip.arrays["audio"].dtype == np.int16
    assert len(ShardClipStore(m.folder / "shards" / "train").keys()) == 3
    reports = "".join(p.read_text() for p in (m.folder / "shards").glob("prepare_report.part*.tsv"))
    assert "test/0Fi83BHQsMA/00003" in reports and "test/0Fi83BHQsMA/00004" in reports
