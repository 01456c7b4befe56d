"""A run trained from shards, killed with SIGKILL in the middle of an epoch and continued with
``avtoolkit run --resume``: the same final weights as a run that never stopped, and the same samples,
none twice, none skipped; ``trainer.checkpoint_every_n_steps`` refused for an npz dataset."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import toy
from avtoolkit.cli.main import main
from avtoolkit.datasets.lrw import build_roi_cache
from avtoolkit.datasets.lrw.datamodule import LRWDataModule
from avtoolkit.engine import run_recipe
from avtoolkit.engine.step_checkpoint import mid_epoch_place
from avtoolkit.models.checkpoint import model_state_dict, read_checkpoint
from synthetic_lrw import write_synthetic_lrw

ENGINE_TESTS = Path(__file__).parents[1] / "engine"
WORDS = ("ABOUT", "BLACK", "CHILD", "DOING")

#: trains `recipe` into `run_dir`, logging the ids of each batch that reaches the model, and SIGKILLs
#: itself after the optimizer step `kill_at` (one step after the mid-epoch checkpoint of step 12).
KILLED_MID_EPOCH = """
import json, os, signal, sys
sys.path.insert(0, {engine!r})
import lightning as L
import toy
from avtoolkit.engine import run_recipe
from avtoolkit.datasets.lrw.datamodule import LRWDataModule

real = LRWDataModule.on_after_batch_transfer
def spy(self, batch, dataloader_idx):
    if self.trainer.training:
        with open({log!r}, "a") as fh:
            fh.write(json.dumps([self.trainer.current_epoch, batch["ids"]]) + "\\n")
    return real(self, batch, dataloader_idx)
LRWDataModule.on_after_batch_transfer = spy

class Kill(L.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)

with toy.registered():
    run_recipe({recipe!r}, run_dir={run_dir!r}, callbacks=[Kill()])
"""


@pytest.fixture(scope="module")
def lrw_shards(tmp_path_factory) -> tuple[Path, Path]:
    """16 LRW-layout train clips (real mp4s) in shards of 3, and one val and one test clip per word."""
    work = tmp_path_factory.mktemp("midepoch")
    root = write_synthetic_lrw(work / "lipread_mp4", WORDS, {"train": 4, "val": 1, "test": 1})
    build_roi_cache(root, work / "cache", workers=1, progress=False, sheets=0, store_format="shards", shard_size=3)
    return root, work / "cache"


def _recipe(root: Path, cache: Path, workers: int) -> dict:
    return {
        "name": "lrw-midepoch", "seed": 3,
        "model": {"encoders": {"video": {"name": "toy_frames", "size": 88, "dim": 8}},
                  "head": {"name": "word_classifier"}},
        "data": {"name": "lrw", "root": str(root), "cache_dir": str(cache), "store_format": "shards",
                 "batch_size": 2, "workers": workers, "time_mask": 3, "shuffle_buffer": 5},
        # 8 steps an epoch: checkpoints inside epoch 2 at steps 9, 12 and 15
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "precision": "32", "threads": 1, "progress_bar": False,
                    "log_every_n_steps": 1, "checkpoint_every_n_steps": 3},
        "optim": {"name": "sgd", "lr": 0.05},
        "loss": {"mixup_alpha": 0.4},  # drawn from the training process's RNG every step
        "ema": {"enabled": True, "decay": 0.9},
        "logging": {"tensorboard": False, "plots": False},
    }


REAL_HOOK = LRWDataModule.on_after_batch_transfer


def _spy(monkeypatch, log: list) -> None:
    """Logs ``[epoch, ids]`` of each training batch that reaches the model (replacing an earlier spy)."""
    real = REAL_HOOK

    def spy(self, batch, dataloader_idx):
        if self.trainer.training:
            log.append([self.trainer.current_epoch, batch["ids"]])
        return real(self, batch, dataloader_idx)

    monkeypatch.setattr(LRWDataModule, "on_after_batch_transfer", spy)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("workers", [0, 2])
def test_killed_inside_an_epoch_then_resumed_gives_the_straight_runs_weights_and_samples(
        lrw_shards, tmp_path, toy_components, monkeypatch, workers):
    root, cache = lrw_shards
    recipe = _recipe(root, cache, workers)
    straight_log: list = []
    _spy(monkeypatch, straight_log)
    straight = tmp_path / "straight"
    run_recipe(recipe, run_dir=straight)
    assert len(straight_log) == 16  # 2 epochs of 8 batches of 2
    for epoch in (0, 1):
        ids = [i for e, batch in straight_log if e == epoch for i in batch]
        assert len(ids) == 16 and len(set(ids)) == 16

    killed, killed_log = tmp_path / "killed", tmp_path / "killed.jsonl"
    script = KILLED_MID_EPOCH.format(engine=str(ENGINE_TESTS), recipe=recipe, run_dir=str(killed),
                                     log=str(killed_log), kill_at=13)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "AVTOOLKIT_RUN_DIR")}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == -9, proc.stderr[-3000:]
    before = [json.loads(line) for line in killed_log.read_text().splitlines()]
    assert len(before) == 13  # step 13 trained, then killed: last.ckpt is the one of step 12
    assert mid_epoch_place(read_checkpoint(killed / "checkpoints" / "last.ckpt")) == {"epoch": 1, "batches": 4}
    assert [r["epoch"] for r in _rows(killed)] == ["1"]

    resumed_log: list = []
    _spy(monkeypatch, resumed_log)
    assert main(["run", "--resume", str(killed)]) == 0
    # what the model learned from: the 12 batches the checkpoint holds, then the resumed ones
    assert before[:12] + resumed_log == straight_log
    assert "inside epoch 2, after 4 batches" in (killed / "training.log").read_text()
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")
    b = read_checkpoint(killed / "checkpoints" / "last.ckpt")
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert json.loads((straight / "results.json").read_text())["metrics"] == \
        json.loads((killed / "results.json").read_text())["metrics"]
    assert [r["epoch"] for r in _rows(killed)] == ["1", "2"]
    assert _rows(killed) == _rows(straight)  # epoch 2's train/loss too: the mean over all its steps


def test_a_part_frozen_for_the_epoch_stays_frozen_when_it_resumes_inside_it(lrw_shards, tmp_path, toy_components):
    """Lightning skips on_train_epoch_start when it resumes inside an epoch; the frozen state is set anyway."""
    root, cache = lrw_shards
    first = _recipe(root, cache, 0) | {"trainer": _recipe(root, cache, 0)["trainer"] | {"max_epochs": 1}}
    run_recipe(first, run_dir=tmp_path / "first")
    encoder = str(tmp_path / "first" / "checkpoints" / "last.ckpt")
    recipe = _recipe(root, cache, 0) | {"init": [{"path": encoder, "take": "encoders.video", "freeze_epochs": 2}]}
    run_recipe(recipe, run_dir=tmp_path / "straight")
    killed = tmp_path / "killed"
    script = KILLED_MID_EPOCH.format(engine=str(ENGINE_TESTS), recipe=recipe, run_dir=str(killed),
                                     log=str(tmp_path / "log.jsonl"), kill_at=13)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "AVTOOLKIT_RUN_DIR")}
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600, env=env).returncode == -9
    assert main(["run", "--resume", str(killed)]) == 0
    start = model_state_dict(read_checkpoint(encoder))  # what init loads: the first run's EMA weights
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(killed / "checkpoints" / "last.ckpt")["state_dict"]
    frozen = [k for k in a if k.startswith("model.encoders.video.")]
    assert frozen and all(torch.equal(start[k.removeprefix("model.")], b[k]) for k in frozen)  # not trained in 1-2
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resume_inside_an_epoch_refuses_a_changed_batch_plan(lrw_shards, tmp_path, toy_components):
    root, cache = lrw_shards
    run = tmp_path / "run"
    script = KILLED_MID_EPOCH.format(engine=str(ENGINE_TESTS), recipe=_recipe(root, cache, 0), run_dir=str(run),
                                     log=str(tmp_path / "log.jsonl"), kill_at=4)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "AVTOOLKIT_RUN_DIR")}
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=600, env=env).returncode == -9
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*"))
    with pytest.raises(Exception, match=r"inside epoch 1, after 3 batches\) with data.shuffle_buffer: 5 -> 7"):
        run_recipe(None, ["data.shuffle_buffer=7"], resume=run)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*")) == before  # nothing on disk changed


def test_checkpoint_every_n_steps_is_refused_for_an_npz_dataset(tmp_path, toy_components, capsys):
    recipe = toy.words_recipe(trainer={"max_epochs": 1, "checkpoint_every_n_steps": 2}, data={"sizes": [16, 8, 8]})
    path = tmp_path / "recipe.yaml"
    import yaml

    path.write_text(yaml.safe_dump(recipe))
    assert main(["run", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "trainer.checkpoint_every_n_steps: needs a streamed dataset (data.store_format: shards" in err
    assert str(path) in err and "resumes exactly only at epoch ends" in err
    assert not (tmp_path / "run").exists()


#: one DDP run of 2 CPU processes (gloo): argv run_dir, kill_at (0: none), resume (0/1). Each process logs the
#: ids of its batches that reach the model to `<run_dir>.ids<rank>.jsonl` with the step count before them.
DDP_RUN = """
import json, os, signal, sys
sys.path.insert(0, {engine!r})
import lightning as L
import toy
from avtoolkit.cli.main import main
from avtoolkit.engine import run_recipe
from avtoolkit.datasets.lrw.datamodule import LRWDataModule

run_dir, kill_at, resume = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
real = LRWDataModule.on_after_batch_transfer
def spy(self, batch, dataloader_idx):
    if self.trainer.training:
        with open(f"{{run_dir}}.ids{{self.trainer.global_rank}}.jsonl", "a") as fh:
            fh.write(json.dumps([self.trainer.global_step, batch["ids"]]) + "\\n")
    return real(self, batch, dataloader_idx)
LRWDataModule.on_after_batch_transfer = spy

class Kill(L.Callback):  # every process stops at the same step, as a lost job does
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

with toy.registered():
    if resume:
        sys.exit(main(["run", "--resume", run_dir]))
    run_recipe({recipe!r}, run_dir=run_dir, callbacks=[Kill()])
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_ddp_processes_killed_inside_an_epoch_resume_exactly(lrw_shards, tmp_path):
    root, cache = lrw_shards
    recipe = _recipe(root, cache, 1)
    recipe["data"]["batch_size"] = 1  # per process: the global batch of 2, 8 steps an epoch as above
    recipe["trainer"] |= {"devices": 2, "strategy": "ddp"}
    script = tmp_path / "ddp.py"
    script.write_text(DDP_RUN.format(engine=str(ENGINE_TESTS), recipe=recipe))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "AVTOOLKIT_RUN_DIR")}

    def run(run_dir: Path, kill_at: int, resume: int) -> int:
        return subprocess.run([sys.executable, str(script), str(run_dir), str(kill_at), str(resume)], env=env,
                              capture_output=True, timeout=600).returncode

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run(straight, 0, 0) == 0
    assert run(killed, 13, 0) != 0
    assert mid_epoch_place(read_checkpoint(killed / "checkpoints" / "last.ckpt")) == {"epoch": 1, "batches": 4}
    assert run(killed, 0, 1) == 0
    for rank in (0, 1):
        expected = [json.loads(line) for line in Path(f"{straight}.ids{rank}.jsonl").read_text().splitlines()]
        logged = [json.loads(line) for line in Path(f"{killed}.ids{rank}.jsonl").read_text().splitlines()]
        # 13 batches before the kill, of which those before the step-12 checkpoint count, then the resumed ones
        assert len(expected) == 16 and [b for b in logged[:13] if b[0] < 12] + logged[13:] == expected, rank
    a = read_checkpoint(straight / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(killed / "checkpoints" / "last.ckpt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(killed) == _rows(straight)
