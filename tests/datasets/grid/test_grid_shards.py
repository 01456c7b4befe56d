"""GRID sentences into tar shards: two ``--part`` runs and ``--index`` hold what one run does, with the
transcripts, word timings and 16 kHz audio of the real s1 clips."""

from __future__ import annotations

import numpy as np

from avtoolkit.cli.main import main
from avtoolkit.datasets.grid.layout import find_clips
from avtoolkit.store import ShardClipStore


def test_grid_parts_and_index_give_one_runs_samples(grid_root, tmp_path, capsys):
    args = ["data.max_clips={train: 3, val: 1, test: 1}", "data.speakers=[s1]", "data.shard_size=2"]

    def prepare(cache, *extra):
        return main(["prepare", "grid_avasr", f"data.root={grid_root}", f"data.cache_dir={cache}", *args,
                     "--format", "shards", "--workers", "1", *extra])

    assert prepare(tmp_path / "one") == 0
    assert prepare(tmp_path / "two", "--part", "2/2") == 0
    assert prepare(tmp_path / "two", "--index") == 2  # part 1/2 has not run
    assert "part(s) 1/2 have not finished" in capsys.readouterr().err
    assert prepare(tmp_path / "two", "--part", "1/2") == 0
    assert prepare(tmp_path / "two", "--index") == 0
    clips = {c.key: c for c in find_clips(grid_root, ["s1"]).clips}
    (folder,) = (tmp_path / "one").glob("rois_*/shards_*")  # named for the crop and the split settings
    for split, count in (("train", 3), ("val", 1), ("test", 1)):
        one = ShardClipStore(folder / split)
        two = ShardClipStore(tmp_path / "two" / folder.relative_to(tmp_path / "one") / split)
        assert one.keys() == two.keys() and len(one.keys()) == count
        for key in one.keys():
            a, b = one.read(key), two.read(key)
            assert a.meta == b.meta and a.meta["text"] == clips[key].transcript and a.meta["speaker"] == "s1"
            assert [w[0] for w in a.meta["words"]] == a.meta["text"].split()
            np.testing.assert_array_equal(a.arrays["rois"], b.arrays["rois"])
            np.testing.assert_array_equal(a.arrays["audio"], b.arrays["audio"])
            assert a.arrays["audio"].dtype == np.int16 and abs(len(a.arrays["audio"]) / 16000 - 3.0) < 0.05
            frames = len(a.arrays["rois"])  # 75 (a few s1 videos have 74)
            assert a.arrays["rois"].shape[1:] == (96, 96) and frames in (74, 75)
            assert one.lengths([key]) == {key: frames}
