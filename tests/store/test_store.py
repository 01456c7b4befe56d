"""The prepared-clip store: round trip, atomic writes, listing with lengths, the failure report, cache folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avtoolkit.atomic import stale_temporaries
from avtoolkit.store import (REPORT_NAME, ClipStore, NpzClipStore, PrepareReport, beside, cache_folder,
                             read_failed, user_cache)


def _clip(frames: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(frames)
    return {"rois": rng.integers(0, 256, (frames, 8, 8), dtype=np.uint8),
            "audio": rng.integers(-300, 300, frames * 640, dtype=np.int16)}


def test_round_trip_of_arrays_and_metadata(tmp_path):
    store = NpzClipStore(tmp_path)
    assert isinstance(store, ClipStore) and not store.contains("s1/a")
    arrays = _clip(5)
    store.write("s1/a", arrays, {"fps": 25, "source": "s1/a.mpg"})
    assert store.contains("s1/a") and store.is_valid("s1/a")
    clip = store.read("s1/a")
    assert sorted(clip.arrays) == ["audio", "rois"] and clip.meta == {"fps": 25, "source": "s1/a.mpg"}
    for name, value in arrays.items():
        assert clip.arrays[name].dtype == value.dtype and np.array_equal(clip.arrays[name], value)
    only_audio = store.read("s1/a", ("audio",))
    assert list(only_audio.arrays) == ["audio"]
    with pytest.raises(KeyError, match="no prepared clip 's1/b'"):
        store.read("s1/b")


def test_without_metadata_the_file_is_the_caches_old_format(tmp_path):
    store = NpzClipStore(tmp_path)
    store.write("ABOUT/train/ABOUT_00001", {"rois": np.zeros((3, 4, 4), np.uint8), "duration": np.float32(0.4)})
    path = tmp_path / "ABOUT" / "train" / "ABOUT_00001.npz"
    assert store.path("ABOUT/train/ABOUT_00001") == path
    with np.load(path, allow_pickle=False) as data:
        assert sorted(data.files) == ["duration", "rois"]
    # a file written by np.savez_compressed directly (an existing cache) reads back
    np.savez_compressed(tmp_path / "old.npz", rois=np.ones((2, 4, 4), np.uint8))
    assert store.read("old").arrays["rois"].shape == (2, 4, 4) and store.read("old").meta == {}


def test_a_failed_write_leaves_the_old_clip_and_no_temporary(tmp_path):
    store = NpzClipStore(tmp_path)
    store.write("s1/a", _clip(4))

    class Boom:  # np.savez_compressed raises while writing this "array"
        def __array__(self, *args, **kwargs):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed mid-write"):
        store.write("s1/a", {"rois": np.zeros((9, 8, 8), np.uint8), "audio": Boom()})
    assert store.lengths() == {"s1/a": 4}
    assert np.array_equal(store.read("s1/a").arrays["rois"], _clip(4)["rois"])
    assert stale_temporaries(tmp_path / "s1") == []


def test_keys_are_listed_with_their_lengths_without_temporaries_or_other_files(tmp_path):
    store = NpzClipStore(tmp_path)
    assert store.keys() == [] and store.lengths() == {}
    for key, frames in (("s2/b", 7), ("s1/a", 3), ("s1/c", 75)):
        store.write(key, _clip(frames))
    (tmp_path / "s1" / ".a.npz.x1y2.tmp").write_bytes(b"half")  # a process killed mid-write
    (tmp_path / REPORT_NAME).write_text("clip\treason\n")
    (tmp_path / "sheets").mkdir()
    (tmp_path / "sheets" / "a.png").write_bytes(b"png")
    assert store.keys() == ["s1/a", "s1/c", "s2/b"]
    assert store.lengths() == {"s1/a": 3, "s1/c": 75, "s2/b": 7}
    assert store.lengths(["s2/b"]) == {"s2/b": 7}
    audio_store = NpzClipStore(tmp_path, length_array="audio")
    assert audio_store.lengths(["s1/a"]) == {"s1/a": 3 * 640}


def test_an_unreadable_clip_is_invalid_and_its_error_says_where_it_is(tmp_path):
    store = NpzClipStore(tmp_path)
    store.path("s1/bad").parent.mkdir(parents=True)
    store.path("s1/bad").write_bytes(b"not a zip")
    assert store.contains("s1/bad") and not store.is_valid("s1/bad")
    with pytest.raises(Exception) as info:
        store.read("s1/bad")
    assert any(str(store.path("s1/bad")) in note and "delete it" in note for note in info.value.__notes__)


@pytest.mark.parametrize("key", ["", "/abs/x", "s1/../../x", "a\\b"])
def test_keys_stay_inside_the_store(tmp_path, key):
    with pytest.raises(ValueError, match="clip key"):
        NpzClipStore(tmp_path).path(key)


def test_metadata_name_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        NpzClipStore(tmp_path).write("a", {"__meta__": np.zeros(1)})


def test_one_failure_report_for_every_corpus(tmp_path):
    report = PrepareReport(prepared=3, skipped=2, failed=[("s1/b", "no face"), ("s1/a", "ValueError: x")],
                           report_path=tmp_path / REPORT_NAME)
    assert str(report) == (f"prepared 3 clips, 2 already cached, 2 failed (listed with reasons in "
                           f"{tmp_path / REPORT_NAME})")
    assert str(PrepareReport(prepared=1)) == "prepared 1 clips, 0 already cached, 0 failed"
    report.write("clip\treason")
    assert (tmp_path / REPORT_NAME).read_text() == "clip\treason\ns1/a\tValueError: x\ns1/b\tno face\n"
    assert read_failed(tmp_path) == {"s1/a": "ValueError: x", "s1/b": "no face"}
    assert read_failed(tmp_path / "missing") == {}
    assert stale_temporaries(tmp_path) == []
    with pytest.raises(ValueError, match="report_path"):
        PrepareReport().write("clip\treason")


def test_one_rule_for_cache_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    root = tmp_path / "lipread_mp4"
    assert cache_folder(None, beside(root, "mouth96_fixed")) == tmp_path / "lipread_mp4_mouth96_fixed"
    assert cache_folder("~/mine", beside(root, "mouth96_fixed")) == tmp_path / "mine"
    grid = user_cache("grid", tmp_path / "grid")
    assert grid.parent == tmp_path / ".cache" / "avtoolkit" and grid.name.startswith("grid_grid_")
    a, b = cache_folder(None, grid, "method='face'"), cache_folder(None, grid, "method='fixed'")
    assert a.parent == b.parent == grid and a != b and a.name.startswith("rois_")
    assert cache_folder(None, grid, "method='face'") == a  # stable


def test_the_store_crosses_process_pools(tmp_path):
    """Preparation pickles the store to its workers."""
    import pickle

    store = pickle.loads(pickle.dumps(NpzClipStore(tmp_path, length_array="audio")))
    assert isinstance(store, NpzClipStore) and store.root == Path(tmp_path) and store.length_array == "audio"
