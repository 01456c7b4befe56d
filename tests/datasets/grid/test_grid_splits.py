"""GRID splits: stable by id hash, LipNet's unseen-speaker and overlapped protocols."""

from __future__ import annotations

import pytest

from avtoolkit.datasets.grid.splits import assign_splits


def _keys(speakers, n):
    return [(s, f"c{i:04d}") for s in speakers for i in range(n)]


def test_adding_clips_never_moves_old_ones():
    old = assign_splits(_keys(["s1"], 300))
    new = assign_splits(_keys(["s1", "s2"], 500))
    assert all(new[k] == v for k, v in old.items())


def test_hash_fractions_are_roughly_respected():
    splits = list(assign_splits(_keys(["s1"], 2000), fractions={"train": 0.7, "val": 0.1, "test": 0.2}).values())
    assert abs(splits.count("test") / 2000 - 0.2) < 0.03 and abs(splits.count("val") / 2000 - 0.1) < 0.03


def test_bad_fractions_and_protocol_are_rejected():
    with pytest.raises(ValueError, match="sum to 1"):
        assign_splits(_keys(["s1"], 3), fractions={"train": 0.9, "test": 0.2})
    with pytest.raises(ValueError, match="unseen_speakers"):
        assign_splits(_keys(["s1"], 3), "lipnet")


def test_unseen_speakers_holds_out_lipnets_four():
    splits = assign_splits(_keys(["s1", "s2", "s3", "s20", "s22", "s23"], 50), "unseen_speakers")
    test_speakers = {k.split("/")[0] for k, v in splits.items() if v == "test"}
    assert test_speakers == {"s1", "s2", "s20", "s22"}
    assert {v for k, v in splits.items() if k.startswith(("s3/", "s23/"))} == {"train", "val"}


def test_overlapped_holds_out_255_per_speaker_reproducibly():
    keys = _keys(["s3", "s4"], 1000)
    a, b = assign_splits(keys, "overlapped", seed=7), assign_splits(keys, "overlapped", seed=7)
    assert a == b
    for s in ("s3", "s4"):
        assert sum(1 for k, v in a.items() if k.startswith(s + "/") and v == "test") == 255
    assert assign_splits(keys, "overlapped", seed=8) != a
