"""GRID sentences into tar shards: two ``--part`` runs and ``--index`` hold what one run does, with the
transcripts, word timings and 16 kHz audio of the real s1 clips; training streams them, with the
batches the npz cache gives."""

from __future__ import annotations

import csv

import lightning as L
import numpy as np
import pytest
import torch

from avtoolkit.cli.main import main
from avtoolkit.datasets.grid.layout import find_clips
from avtoolkit.engine.step_checkpoint import mid_epoch_place
from avtoolkit.models.checkpoint import read_checkpoint
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


GRID_DATA = {"name": "grid", "speakers": ["s1"], "max_clips": {"train": 4, "val": 1, "test": 1}, "batch_size": 2,
             "workers": 0, "video_size": 48, "spec_augment": False, "shard_size": 3, "prepare_workers": 1}


def _datamodule(grid_root, cache, **extra):
    from avtoolkit.datasets.grid.datamodule import GridDataModule

    args = {k: v for k, v in GRID_DATA.items() if k != "name"} | {"root": str(grid_root), "cache_dir": str(cache)}
    return GridDataModule(**(args | extra))


def _items(loader) -> dict[str, dict]:
    """id -> that clip's audio, video, targets and text, out of a loader's batches."""
    out = {}
    for batch in loader:
        for b, clip_id in enumerate(batch["ids"]):
            out[clip_id] = {"audio": batch["audio"][b, :batch["audio_lengths"][b]],
                            "video": batch["video"][b, :batch["video_lengths"][b]],
                            "targets": batch["targets"][b, :batch["target_lengths"][b]].tolist(),
                            "text": batch["texts"][b]}
    return out


def test_grid_trains_from_shards_with_the_npz_batches(grid_root, tmp_path):
    from avtoolkit.data.video import VIDEO_STD
    from avtoolkit.engine import run_recipe
    from tiny_models import TINY_AV_CTC

    cache = tmp_path / "cache"
    npz, shards = _datamodule(grid_root, cache), _datamodule(grid_root, cache, store_format="shards")
    npz.prepare_data()
    shards.prepare_data()
    npz.setup()
    shards.setup()
    for split, loader in (("train", lambda dm: dm.train_dataloader()), ("val", lambda dm: dm.val_dataloader())):
        a, b = _items(loader(npz)), _items(loader(shards))
        assert sorted(a) == sorted(b) == sorted(c.key for c in npz.clips[split]), split
        for key in a:
            assert a[key]["text"] == b[key]["text"] and a[key]["targets"] == b[key]["targets"]
            torch.testing.assert_close(a[key]["audio"], b[key]["audio"], rtol=0, atol=0)  # the same int16 samples
            grey = (a[key]["video"] - b[key]["video"]).abs() * VIDEO_STD * 255  # grey levels of 255
            # JPEG at quality 95, then the resize to 48x48: measured 0.25 mean, 2.25 largest
            assert a[key]["video"].shape == b[key]["video"].shape and grey.mean() < 0.5 and grey.max() < 4, key

    # two epochs of two steps from the shards through `avtoolkit run`'s engine; then the same run
    # stopped inside epoch 2, after the checkpoint of step 3, and resumed: the same weights
    recipe = {"name": "grid-shards", "seed": 1, "model": TINY_AV_CTC,
              "data": GRID_DATA | {"root": str(grid_root), "cache_dir": str(cache), "store_format": "shards"},
              "trainer": {"max_epochs": 2, "accelerator": "cpu", "precision": "32", "threads": 1,
                          "progress_bar": False, "log_every_n_steps": 1, "checkpoint_every_n_steps": 1},
              "optim": {"name": "adamw", "lr": 1e-3}, "logging": {"tensorboard": False, "plots": False}}
    metrics = run_recipe(recipe, run_dir=tmp_path / "run")
    assert 0.0 <= metrics["test/cer"]
    with (tmp_path / "run" / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["step"] for r in rows] == ["2", "4"] and float(rows[0]["train/loss"]) > 0

    class Stop(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if trainer.global_step == 3:
                raise RuntimeError("stopped")  # stands for the kill (tests/robustness SIGKILLs)
    with pytest.raises(RuntimeError, match="stopped"):
        run_recipe(recipe, run_dir=tmp_path / "stopped", callbacks=[Stop()])
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert mid_epoch_place(read_checkpoint(last)) == {"epoch": 1, "batches": 1}
    run_recipe(None, resume=tmp_path / "stopped")
    a = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(last)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_grid_word_mode_does_not_stream_shards(grid_root, tmp_path):
    with pytest.raises(ValueError, match="data.store_format: shards streams GRID sentences"):
        _datamodule(grid_root, tmp_path, mode="word", store_format="shards")
