"""LRW into tar shards through ``avtoolkit prepare --format shards``: one run, three parts, the index step,
the failed clip reported; and the ``lrw`` datamodule streaming from them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avtoolkit.cli.main import main
from avtoolkit.datasets.lrw import build_roi_cache, list_clips
from avtoolkit.datasets.lrw.datamodule import LRWDataModule
from avtoolkit.store import NpzClipStore, ShardClipStore
from synthetic_lrw import write_synthetic_lrw

WORDS = ("ABOUT", "BLACK", "CHILD")


@pytest.fixture(scope="module")
def lrw_tree(tmp_path_factory) -> Path:
    root = write_synthetic_lrw(tmp_path_factory.mktemp("lrw") / "lipread_mp4", WORDS, {"train": 3, "val": 1, "test": 1})
    (root / "BLACK" / "train" / "BLACK_09999.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 20)
    return root


def _prepare(lrw_tree: Path, cache: Path, *extra: str) -> int:
    return main(["prepare", "lrw_effv2t", f"data.root={lrw_tree}", f"data.cache_dir={cache}",
                 "data.shard_size=4", "--format", "shards", "--workers", "1", *extra])


def _samples(cache: Path) -> dict[str, tuple[bytes, dict]]:
    """split/key -> (rois bytes, metadata) of every sample in the shards' indexes."""
    out = {}
    for split in ("train", "val", "test"):
        store = ShardClipStore(cache / "shards" / split)
        assert store.read_index() is not None, f"no index for {split}"
        for key in store.keys():
            clip = store.read(key)
            out[f"{split}:{key}"] = (clip.arrays["rois"].tobytes(), clip.meta)
    return out


def test_prepare_shards_then_three_parts_give_the_same_samples(lrw_tree, tmp_path, capsys):
    assert _prepare(lrw_tree, tmp_path / "one") == 1  # the broken clip fails the run, the others are stored
    report = (tmp_path / "one" / "shards" / "prepare_report.tsv").read_text()
    assert "BLACK_09999.mp4" in report and len(report.splitlines()) == 2
    one = _samples(tmp_path / "one")
    assert len(one) == 3 * 5
    train = ShardClipStore(tmp_path / "one" / "shards" / "train").read_index()
    assert [len(s["samples"]) for s in train["shards"]] == [4, 4, 1] and train["frames"] == 9 * 29
    key = "train:ABOUT/train/ABOUT_00001"
    assert one[key][1] == {"text": "ABOUT", "split": "train"}
    # the same crops as the per-clip cache, through JPEG
    build_roi_cache(lrw_tree, tmp_path / "npz", splits=("train",), workers=1, progress=False, sheets=0)
    npz = NpzClipStore(tmp_path / "npz").read("ABOUT/train/ABOUT_00001").arrays["rois"]
    shard = np.frombuffer(one[key][0], np.uint8).reshape(npz.shape)
    assert np.abs(shard.astype(int) - npz).mean() < 1.0

    parts = tmp_path / "parts"
    assert _prepare(lrw_tree, parts, "--part", "1/3") == 0
    assert _prepare(lrw_tree, parts, "--index") == 2  # parts 2 and 3 missing: refused, no index
    assert "part(s) 2/3, 3/3 have not finished" in capsys.readouterr().err
    assert not list(parts.glob("shards/*/index.json"))
    assert _prepare(lrw_tree, parts, "--part", "3/3") == 1  # the part holding BLACK_09999 (sorted 7th of 10)
    assert _prepare(lrw_tree, parts, "--part", "2/3") == 0
    assert _prepare(lrw_tree, parts, "--index") == 0
    assert _samples(parts) == one
    names = sorted(p.name for p in (parts / "shards" / "train").glob("*.tar"))
    assert {n[:12] for n in names} == {"part001of003", "part002of003", "part003of003"}


def test_bad_part_arguments_are_usage_errors(lrw_tree, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        _prepare(lrw_tree, tmp_path, "--part", "4/3")
    assert exited.value.code == 2
    assert "I must be between 1 and N" in capsys.readouterr().err
    assert main(["prepare", "lrw_effv2t", f"data.root={lrw_tree}", f"data.cache_dir={tmp_path}", "--part", "1/2"]) == 2
    assert "add --format shards" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_datamodule_streams_every_prepared_clip_once_per_epoch(lrw_tree, tmp_path):
    dm = LRWDataModule(root=str(lrw_tree), batch_size=2, workers=2, cache_dir=str(tmp_path), store_format="shards",
                       shard_size=2, prepare_workers=1, use_word_boundary=True)
    dm.prepare_data()
    seen = []
    for batch in dm.train_dataloader():
        assert batch["video"].shape[1:] == (29, 1, 88, 88) and batch["word_boundary"].shape[1] == 29
        seen += [(dm.vocabulary[int(label)], clip_id) for label, clip_id in zip(batch["label"], batch["ids"])]
    expected = [(c.word, c.id) for c in list_clips(lrw_tree, "train", list(WORDS)) if c.id != "BLACK_09999"]
    assert len(expected) == 9 and sorted(seen) == sorted(expected)
    frames = LRWDataModule(root=str(lrw_tree), workers=0, cache_dir=str(tmp_path), store_format="shards",
                           max_frames=60)
    sizes = [len(b["ids"]) for b in frames.train_dataloader()]
    assert sum(sizes) == 9 and max(sizes) == 2  # 29-frame clips, at most 60 frames a batch
    assert json.loads((tmp_path / "shards" / "train" / "index.json").read_text())["samples"] == 9
