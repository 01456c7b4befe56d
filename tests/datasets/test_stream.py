"""``ShardStream``: each sample once per epoch across 2 ranks x 2 loader workers, frame buckets, and an
epoch killed with SIGKILL in the middle then resumed giving the batches of an uninterrupted one."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avtoolkit.data.contract import collate
from avtoolkit.datasets._stream import ShardStream, plan_epoch, stream_loader
from avtoolkit.datasets.lrw import build_roi_cache
from avtoolkit.datasets.lrw.dataset import LRWShardItems
from avtoolkit.store import ShardClipStore
from synthetic_lrw import write_synthetic_lrw

WORDS = ["ABOUT", "BLACK", "CHILD", "DOING"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """28 LRW-layout train clips (real mp4s, 29 frames) in 7 shards of 4."""
    work = tmp_path_factory.mktemp("stream")
    root = write_synthetic_lrw(work / "lipread_mp4", WORDS, {"train": 7, "val": 0, "test": 0})
    build_roi_cache(root, work / "cache", splits=("train",), workers=1, progress=False, sheets=0,
                    store_format="shards", shard_size=4)
    return work / "cache" / "shards" / "train"


def _stream(folder, **kw) -> ShardStream:
    options = {"batch_size": 3, "shuffle": True, "buffer": 5, "seed": 7, "train": True,
               "names": ("rois", "duration")} | kw
    return ShardStream(folder, LRWShardItems(WORDS), functools.partial(collate, word_boundary=True), **options)


def test_two_ranks_of_two_workers_see_every_sample_once_per_epoch(shards):
    keys = ShardClipStore(shards).keys()
    assert len(keys) == 28
    for epoch in (0, 1):
        seen, batches = [], []
        for rank in (0, 1):
            stream = _stream(shards, rank=rank, world_size=2)
            stream.set_epoch(epoch)
            got = [batch["ids"] for batch in stream_loader(stream, workers=2)]
            batches.append(len(got))
            seen += [i for ids in got for i in ids]
        assert sorted(seen) == sorted(k.rsplit("/", 1)[1] for k in keys), epoch
        assert batches[0] == batches[1]  # DDP needs equal step counts
        if epoch == 0:
            first = seen
    assert seen != first  # reshuffled every epoch


def test_max_frames_buckets_and_global_batches_do_not_depend_on_the_world_size():
    # 7 shards of 5 clips, lengths 10..60 frames
    shards = [{"name": f"s{i}", "samples": [{"key": f"k{i}_{j}", "length": 10 * (1 + (i + j) % 6), "members": {}}
                                            for j in range(5)]} for i in range(7)]
    plans = [plan_epoch(shards, 3, r, 3, max_frames=100, buffer=8, seed=1) for r in range(3)]
    assert len({len(p) for p in plans}) == 1  # DDP: the same step count on every rank
    flat = [s["key"] for p in plans for b in p for s in b]
    assert sorted(flat) == sorted(s["key"] for sh in shards for s in sh["samples"])
    totals = [sum(s["length"] for b in step for s in b) for step in zip(*plans)]
    # 100 frames a rank; a window's last bucket of fewer clips than ranks joins its neighbour
    assert sum(t <= 300 for t in totals) >= len(totals) - 5 and max(totals) <= 300 + 2 * 60
    padding = lambda plan: sum(len(b) * max(s["length"] for s in b) - sum(s["length"] for s in b) for b in plan)
    unbucketed = plan_epoch(shards, 3, 0, 1, batch_size=4, buffer=8, seed=1)
    assert padding(plan_epoch(shards, 3, 0, 1, max_frames=100, buffer=8, seed=1)) < padding(unbucketed) / 2
    # four ranks of 2 step through the global batches of one process of 8 (30 clips: 8, 8, 8, 6;
    # a last global batch of fewer clips than ranks would join the one before on 4 ranks only)
    one = plan_epoch(shards[:6], 5, 0, 1, batch_size=8, buffer=8, seed=2)
    four = [plan_epoch(shards[:6], 5, r, 4, batch_size=2, buffer=8, seed=2) for r in range(4)]
    assert [sorted(s["key"] for b in step for s in b) for step in zip(*four)] == \
        [sorted(s["key"] for s in b) for b in one]


RUN = """
import functools, json, os, signal, sys
sys.path.insert(0, {fixtures!r}); sys.path.insert(0, {tests!r})
from avtoolkit.atomic import atomic_write
from avtoolkit.datasets._stream import stream_loader
from test_stream import _stream
log, state_file, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
stream = _stream({shards!r}, rank=1, world_size=2)
stream.set_epoch(2)
if os.path.exists(state_file):
    stream.load_state_dict(json.load(open(state_file)))
done = stream.start_batch
for batch in stream_loader(stream, workers=2):
    with open(log, "a") as fh:  # what the training step consumed: ids and the augmented pixels
        fh.write(json.dumps([batch["ids"], float(batch["video"].double().sum())]) + "\\n")
    done += 1
    with atomic_write(state_file, "w") as fh:  # saved with the step, as a checkpoint would be
        json.dump({{"epoch": stream.epoch, "batches": done}}, fh)
    if done == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_epoch_killed_in_the_middle_resumes_exactly(shards, tmp_path):
    script = tmp_path / "consume.py"
    here = Path(__file__).resolve().parent
    script.write_text(RUN.format(fixtures=str(here.parent / "fixtures"), tests=str(here), shards=str(shards)))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}

    def run(log: Path, state: Path, kill_after: int) -> int:
        return subprocess.run([sys.executable, str(script), str(log), str(state), str(kill_after)], env=env,
                              timeout=120).returncode

    assert run(tmp_path / "straight.jsonl", tmp_path / "straight.json", 0) == 0
    assert run(tmp_path / "split.jsonl", tmp_path / "split.json", 2) == -9  # killed after batch 2 of 5
    assert json.loads((tmp_path / "split.json").read_text()) == {"epoch": 2, "batches": 2}
    assert run(tmp_path / "split.jsonl", tmp_path / "split.json", 0) == 0
    straight = (tmp_path / "straight.jsonl").read_text().splitlines()
    assert len(straight) == 5 and (tmp_path / "split.jsonl").read_text().splitlines() == straight


def test_a_stream_without_index_says_how_to_finish_it(tmp_path):
    store = ShardClipStore(tmp_path, part=(1, 2))
    store.write("c0", {"rois": torch.zeros(2, 4, 4, dtype=torch.uint8).numpy()})
    store.close()
    with pytest.raises(FileNotFoundError, match="--format shards --index"):
        _stream(tmp_path)


def test_a_saved_place_planned_for_other_processes_or_batches_is_refused(shards):
    from avtoolkit.datasets._stream import StreamedTraining
    from avtoolkit.errors import UsageError

    class Data(StreamedTraining):
        streamed = True

    data = Data()
    stream = _stream(shards, rank=0, world_size=1)  # 28 clips in batches of 3: 10 batches an epoch
    data.load_state_dict({"train_stream": {"epoch": 1, "batches": 4, "world_size": 1, "epoch_batches": 10}})
    data.train_stream(stream, 1)
    assert stream.state_dict() == {"epoch": 1, "start_batch": 4} and len(stream) == 10
    assert len(list(stream)) == 6  # the rest of the epoch
    data.train_stream(stream, 2)  # the next epoch starts at its first batch
    assert stream.state_dict() == {"epoch": 2, "start_batch": 0}
    data.load_state_dict({"train_stream": {"epoch": 1, "batches": 4, "world_size": 2, "epoch_batches": 5}})
    with pytest.raises(UsageError, match="saved by 2 process\\(es\\) stepping through 5 batches, this run has 1 and 10"):
        data.train_stream(stream, 1)
