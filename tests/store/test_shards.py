"""``ShardClipStore``: real mouth crops round-trip through tar shards; killed writes, parts and the index."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from avtoolkit.errors import UsageError
from avtoolkit.store import NpzClipStore, ShardClipStore
from avtoolkit.store.shards import INDEX_NAME, decode_rois, encode_rois

MOUTHS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "grid" / "mouth_roi" / "bbaf2n"


@pytest.fixture(scope="module")
def mouth_rois() -> np.ndarray:
    """29 real 96x96 grey mouth crops (GRID bbaf2n's reference crops, resized): an LRW-size clip."""
    import cv2

    files = sorted(MOUTHS.glob("*.png"))
    if len(files) < 29:
        pytest.skip(f"needs the shared GRID mouth crops in {MOUTHS}")
    return np.stack([cv2.resize(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE), (96, 96)) for f in files[:29]])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b) ** 2)))


def test_real_crops_round_trip_smaller_than_npz_with_quality_kept(mouth_rois, tmp_path):
    audio = (np.sin(np.arange(16000) / 7.0) * 9000).astype(np.int16)
    store = ShardClipStore(tmp_path / "shards", shard_size=4)
    store.write("ABOUT/train/ABOUT_00001", {"rois": mouth_rois, "audio": audio}, {"text": "ABOUT", "label": 3})
    store.close()
    assert store.write_index()["samples"] == 1
    clip = ShardClipStore(tmp_path / "shards").read("ABOUT/train/ABOUT_00001")
    assert clip.meta == {"text": "ABOUT", "label": 3}
    np.testing.assert_array_equal(clip.arrays["audio"], audio)
    assert clip.arrays["rois"].shape == mouth_rois.shape and clip.arrays["rois"].dtype == np.uint8
    assert _psnr(clip.arrays["rois"], mouth_rois) > 40
    assert np.abs(clip.arrays["rois"].astype(int) - mouth_rois).mean() < 1.5
    npz = NpzClipStore(tmp_path / "npz")
    npz.write("a", {"rois": mouth_rois})
    jpeg_bytes = len(encode_rois(mouth_rois))
    assert jpeg_bytes < 0.7 * npz.path("a").stat().st_size
    # lossless when asked: PNG frames come back bit for bit
    np.testing.assert_array_equal(decode_rois(encode_rois(mouth_rois, quality=0)), mouth_rois)


def test_shards_are_webdataset_tars_with_their_listing(mouth_rois, tmp_path):
    store = ShardClipStore(tmp_path, shard_size=2)
    for i in range(5):
        store.write(f"s1/clip{i}", {"rois": mouth_rois[: i + 3]}, {"text": f"t{i}"})
    store.close()
    index = store.write_index()
    assert [len(s["samples"]) for s in index["shards"]] == [2, 2, 1]
    assert index["frames"] == 3 + 4 + 5 + 6 + 7
    with tarfile.open(tmp_path / index["shards"][0]["name"]) as tar:
        names = tar.getnames()
        assert names == ["s1/clip0.rois.jpgs", "s1/clip0.json", "s1/clip1.rois.jpgs", "s1/clip1.json"]
        assert json.load(tar.extractfile("s1/clip1.json")) == {"text": "t1"}
    assert ShardClipStore(tmp_path).lengths() == {f"s1/clip{i}": i + 3 for i in range(5)}
    # shards copied without their sidecars (and index) are listed from their tar headers
    for extra in [*tmp_path.glob("*.tar.json"), tmp_path / INDEX_NAME]:
        extra.unlink()
    rescanned = ShardClipStore(tmp_path)
    assert rescanned.lengths() == {f"s1/clip{i}": i + 3 for i in range(5)}
    assert rescanned.read("s1/clip3").meta == {"text": "t3"}


def test_a_killed_write_loses_only_the_unfinished_shard_and_resumes(mouth_rois, tmp_path):
    store = ShardClipStore(tmp_path, shard_size=2)
    for i in range(3):  # two finished in shard 0, the third in a .partial when the process dies
        store.write(f"c{i}", {"rois": mouth_rois[:3]})
    assert len(list(tmp_path.glob("*.partial"))) == 1
    del store  # no close(): what a kill -9 leaves
    again = ShardClipStore(tmp_path, shard_size=2)
    assert again.keys() == ["c0", "c1"] and not again.contains("c2")
    for i in (2, 3, 4):
        again.write(f"c{i}", {"rois": mouth_rois[:3]})
    again.close()
    assert not list(tmp_path.glob("*.partial"))
    assert again.write_index()["samples"] == 5
    assert sorted(p.name for p in tmp_path.glob("*.tar")) == [f"part001of001-00000{i}.tar" for i in range(3)]


def test_the_index_waits_for_every_part(mouth_rois, tmp_path):
    for i in (1, 3):
        part = ShardClipStore(tmp_path, shard_size=2, part=(i, 3))
        part.write(f"c{i}", {"rois": mouth_rois[:3]})
        part.close()
        part.write_part_done(failed=0)
    with pytest.raises(UsageError, match=r"part\(s\) 2/3 have not finished"):
        ShardClipStore(tmp_path).write_index()
    assert not (tmp_path / INDEX_NAME).exists()
    other_machine = tmp_path / "elsewhere"
    part = ShardClipStore(other_machine, part=(2, 3))
    part.write("c1", {"rois": mouth_rois[:3]})  # the same key in two parts (a wrong --part on one machine)
    part.close()
    part.write_part_done(failed=0)
    for f in other_machine.iterdir():
        f.rename(tmp_path / f.name)
    with pytest.raises(ValueError, match="'c1' is in both part001of003-000000.tar and part002of003-000000.tar"):
        ShardClipStore(tmp_path).write_index()


def test_a_cut_shard_names_itself(mouth_rois, tmp_path):
    store = ShardClipStore(tmp_path)
    store.write("c0", {"rois": mouth_rois})
    store.close()
    store.write_index()
    shard = next(tmp_path.glob("*.tar"))
    shard.write_bytes(shard.read_bytes()[:2000])
    with pytest.raises(ValueError, match="ends") as err:
        ShardClipStore(tmp_path).read("c0")
    assert "part001of001-000000.tar:c0" in "".join(err.value.__notes__)
    buf = io.BytesIO(b"not a blob")
    with pytest.raises(ValueError, match="AVJ1"):
        decode_rois(buf.getvalue())
