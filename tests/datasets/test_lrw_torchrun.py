"""A tiny LRW recipe trained from shards under ``torchrun --nnodes 2 --nproc-per-node 2`` (gloo, localhost):
every sample once per epoch, and the weights of one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avtoolkit.datasets.lrw import build_roi_cache
from synthetic_lrw import write_synthetic_lrw

HERE = Path(__file__).resolve().parent
ENGINE_TESTS = HERE.parent / "engine"  # toy.py: ToyFrames, a linear frame encoder without BatchNorm

SCRIPT = """
import json, os, sys
sys.path.insert(0, {engine!r})
import lightning as L
import toy
from avtoolkit.engine import run_recipe

class SeenIds(L.Callback):  # what each rank trained on, batch by batch
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        with open(os.path.join(sys.argv[1], f"ids_{{trainer.current_epoch}}_{{trainer.global_rank}}.jsonl"), "a") as fh:
            fh.write(json.dumps(batch["ids"]) + "\\n")

batch, world = int(sys.argv[3]), int(sys.argv[4])
recipe = {{
    "name": "lrw-shards-ddp", "seed": 5,
    # no BatchNorm: per-rank batch statistics would differ from one process's (SyncBatchNorm is GPU-only)
    "model": {{"encoders": {{"video": {{"name": "toy_frames", "size": 88, "dim": 16}}}}, "head": {{"name": "word_classifier"}}}},
    "data": {{"name": "lrw", "root": {root!r}, "cache_dir": {cache!r}, "store_format": "shards", "batch_size": batch,
             "workers": 1, "time_mask": 3}},
    "trainer": {{"max_epochs": 2, "accelerator": "cpu", "devices": 1 if world == 1 else 2, "num_nodes": 1 if world == 1 else 2,
                "strategy": "auto" if world == 1 else "ddp", "precision": "32", "threads": 1, "progress_bar": False,
                "log_every_n_steps": 1}},
    "optim": {{"name": "sgd", "lr": 0.05}},
    "logging": {{"tensorboard": False}},
}}
with toy.registered():
    run_recipe(recipe, run_dir=sys.argv[2], callbacks=[SeenIds()])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_torchrun_two_nodes_of_two_match_one_process_with_the_global_batch(tmp_path):
    lrw = write_synthetic_lrw(tmp_path / "lipread_mp4", ("ABOUT", "BLACK", "CHILD", "DOING"),
                              {"train": 4, "val": 1, "test": 1})
    cache = tmp_path / "cache"
    build_roi_cache(lrw, cache, workers=1, progress=False, sheets=0, store_format="shards", shard_size=3)
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(engine=str(ENGINE_TESTS), root=str(lrw), cache=str(cache)))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "AVTOOLKIT_RUN_DIR")}
    env["OMP_NUM_THREADS"] = "1"
    port = _free_port()
    ddp_ids, ddp_run = tmp_path / "ids_ddp", tmp_path / "ddp"
    ddp_ids.mkdir()
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "2",
                               "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port),
                               str(script), str(ddp_ids), str(ddp_run), "2", "4"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=800)[0] for node in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    one_ids, one_run = tmp_path / "ids_one", tmp_path / "one"
    one_ids.mkdir()
    single = subprocess.run([sys.executable, str(script), str(one_ids), str(one_run), "8", "1"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]

    for epoch in (0, 1):
        per_rank = [[json.loads(line) for line in (ddp_ids / f"ids_{epoch}_{r}.jsonl").read_text().splitlines()]
                    for r in range(4)]
        seen = [i for batches in per_rank for b in batches for i in b]
        assert len(seen) == 16 and len(set(seen)) == 16, epoch  # every training clip once per epoch
        one = [json.loads(line) for line in (one_ids / f"ids_{epoch}_0.jsonl").read_text().splitlines()]
        assert [sorted(sum(step, [])) for step in zip(*per_rank)] == [sorted(b) for b in one]  # same global batches
    a = torch.load(ddp_run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    b = torch.load(one_run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")["state_dict"]
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point())
    print(f"largest weight difference, 2x2 torchrun vs one process: {worst:.3g}")
    for key in a:
        if a[key].is_floating_point():
            # gloo's all-reduce sums in another order than one process's batch: float rounding only
            # (measured 3e-8 on 2 CPU cores)
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
