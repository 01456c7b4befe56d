"""LRW data: layout, word boundary, prepare (corrupt clips, resume), the ``lrw`` datamodule."""

from pathlib import Path

import numpy as np
import pytest
import torch

from avtoolkit.datasets.lrw import (
    LRWNotFoundError, build_roi_cache, cache_path, list_clips, read_duration, select_words, word_boundary,
)
from avtoolkit.datasets.lrw.datamodule import LRWDataModule
from synthetic_lrw import write_synthetic_lrw

CLIPS = {"train": 2, "val": 1, "test": 1}


@pytest.fixture(scope="module")
def lrw_tree(tmp_path_factory) -> Path:
    root = write_synthetic_lrw(tmp_path_factory.mktemp("lrw") / "lipread_mp4", ("ABOUT", "BLACK", "CHILD"), CLIPS)
    corrupt = root / "BLACK" / "test" / "BLACK_09999.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    return root


def test_duration_line_gives_a_centred_boundary(tmp_path):
    txt = tmp_path / "ABOUT_00001.txt"
    txt.write_text("Text:  ABOUT\nConf:  5\n\nDuration: 0.52 seconds\n")
    assert read_duration(txt) == pytest.approx(0.52)
    boundary = word_boundary(read_duration(txt), 29)
    inside = np.flatnonzero(boundary)
    assert 29 - 1 - inside[-1] == inside[0]  # centred
    assert len(inside) == 2 * int(0.26 * 25) + 3
    bad = tmp_path / "bad.txt"
    bad.write_text("Text: X\nDuration: about a second\n")
    with pytest.raises(ValueError, match="bad.txt:2"):
        read_duration(bad)
    assert read_duration(tmp_path / "missing.txt") is None
    assert word_boundary(None, 29).all()


def test_word_selection_follows_sorted_order():
    words = ["CHILD", "ABOUT", "BLACK"]
    assert select_words(words) == ["ABOUT", "BLACK", "CHILD"]
    assert select_words(words, words=2) == ["ABOUT", "BLACK"]
    assert select_words(words, words_list=["CHILD", "ABOUT"]) == ["ABOUT", "CHILD"]
    with pytest.raises(ValueError, match="ZEBRA"):
        select_words(words, words_list=["ZEBRA"])


def test_roi_cache_reports_the_corrupt_clip_and_converts_the_rest(lrw_tree, tmp_path):
    cache = tmp_path / "cache"
    report = build_roi_cache(lrw_tree, cache, workers=2, progress=False)
    assert report.prepared == 3 * 4 and report.skipped == 0
    assert [Path(v).name for v, _ in report.failed] == ["BLACK_09999.mp4"]
    lines = (cache / "prepare_report.tsv").read_text().splitlines()
    assert len(lines) == 2 and "BLACK_09999.mp4" in lines[1] and "MediaError" in lines[1]
    clip = list_clips(lrw_tree, "train", ["ABOUT"])[0]
    with np.load(cache_path(cache, clip)) as data:
        assert data["rois"].shape == (29, 96, 96) and data["rois"].dtype == np.uint8
        assert float(data["duration"]) == pytest.approx(0.4)
    again = build_roi_cache(lrw_tree, cache, workers=1, progress=False)  # resumes: nothing redone
    assert again.prepared == 0 and again.skipped == 12 and len(again.failed) == 1


def test_datamodule_batches(lrw_tree, tmp_path):
    dm = LRWDataModule(root=str(lrw_tree), words=2, batch_size=3, workers=0, cache_dir=str(tmp_path / "c"),
                       use_word_boundary=True, prepare_workers=1)
    assert dm.vocabulary == ["ABOUT", "BLACK"]
    dm.prepare_data()
    with pytest.warns(UserWarning, match="not prepared"):
        dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (3, 29, 1, 88, 88)
    assert batch["video_lengths"].tolist() == [29, 29, 29]
    assert batch["word_boundary"].shape == (3, 29)
    assert set(batch["label"].tolist()) <= {0, 1}
    assert abs(float(batch["video"].mean())) < 3  # normalised, not raw 0..255
    test = next(iter(dm.test_dataloader()))
    assert test["ids"] == ["ABOUT_00004", "BLACK_00008"]  # the corrupt BLACK_09999 is left out


def test_missing_lrw_says_where_it_comes_from(tmp_path):
    with pytest.raises(LRWNotFoundError, match="robots.ox.ac.uk.*data.root"):
        LRWDataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(LRWNotFoundError, match="data.root is not set"):
        LRWDataModule()
