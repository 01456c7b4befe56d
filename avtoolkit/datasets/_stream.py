"""``ShardStream``: batches streamed from a :class:`~avtoolkit.store.ShardClipStore`, each sample once per epoch.

The whole epoch is planned from ``index.json`` alone (keys and lengths; nothing decoded), the
same way on every rank and loader worker, and the same whatever the number of ranks:

1. the shards in a seeded order (``seed + epoch``), their samples one after another;
2. a shuffle buffer of ``buffer`` samples over that sequence (WebDataset's ``shuffle``);
3. global batches of ``batch_size x world_size`` samples or, with ``max_frames``, buckets:
   each window of ``buffer`` shuffled samples is sorted by length and cut into batches of at
   most ``max_frames x world_size`` frames in total (auto_avsr's ``max_frames`` per GPU), the
   batches of a window then shuffled;
4. rank ``r`` takes samples ``r, r + world_size, ...`` of each global batch: every sample once
   per epoch, every rank the same number of steps (DDP needs that), and the global batch of
   step ``k`` the same on 1 rank or 32 (one process with ``batch_size x 4`` steps through the
   samples a 4-rank run does). Ranks read neighbouring samples of the same shards, seeking to
   them (a local disk, a shared file system, or range requests on object storage).

Loader worker ``w`` of ``W`` decodes the rank's batches ``k + w, k + w + W, ...``; a
``DataLoader`` (``batch_size=None``) takes batches from its workers in turn, so the rank sees
its plan in order. ``k`` is the number of batches already consumed this epoch
(:meth:`ShardStream.load_state_dict`), which makes a resumed epoch continue exactly where the
stopped one was: the plan does not depend on ``k``, and every sample's augmentation is seeded
by ``(seed, epoch, its place in the epoch)``, not by the worker that decodes it.

:class:`StreamedTraining` gives a datamodule that trains from a stream the Lightning state
``avtoolkit run`` saves in its mid-epoch checkpoints (``trainer.checkpoint_every_n_steps``):
the epoch and the number of batches the trainer has taken, counted as they reach it.

Private to the corpus folders; the registry skips it.
"""

from __future__ import annotations

import contextlib
import os
import random
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from avtoolkit.errors import DatasetNotFoundError
from avtoolkit.store.base import Clip
from avtoolkit.store.shards import ShardClipStore, _open, read_sample

Sample = dict[str, Any]  # {"key", "length", "members", "shard", "place"}


def distributed_rank() -> tuple[int, int]:
    """``(rank, world size)`` of this process: from ``torch.distributed`` when it is set up, else torchrun's
    ``RANK``/``WORLD_SIZE``, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def plan_epoch(shards: Sequence[Mapping[str, Any]], epoch: int, rank: int, world_size: int, *,
               batch_size: int | None = None, max_frames: int | None = None, shuffle: bool = True,
               buffer: int = 256, seed: int = 0) -> list[list[Sample]]:
    """The batches rank ``rank`` of ``world_size`` reads in ``epoch`` (see the module's docstring).

    ``batch_size`` and ``max_frames`` are per rank: the global batch holds ``world_size`` times
    as much, and is the same whatever the world size, so a run on 4 ranks of batch 2 steps
    through the same samples as one process of batch 8.

    Examples:
        >>> shards = [{"name": f"s{i}", "samples": [{"key": f"k{i}{j}", "length": j + 1, "members": {}}
        ...            for j in range(3)]} for i in range(2)]
        >>> [[s["key"] for s in b] for b in plan_epoch(shards, 0, 0, 2, batch_size=2, shuffle=False)]
        [['k00', 'k02'], ['k11']]
        >>> [[s["key"] for s in b] for b in plan_epoch(shards, 0, 1, 2, batch_size=2, shuffle=False)]
        [['k01', 'k10'], ['k12']]
        >>> [[s["key"] for s in b] for b in plan_epoch(shards, 0, 0, 1, batch_size=4, shuffle=False)]
        [['k00', 'k01', 'k02', 'k10'], ['k11', 'k12']]
    """
    if (batch_size is None) == (max_frames is None):
        raise ValueError("give exactly one of batch_size and max_frames")
    order = list(range(len(shards)))
    if shuffle:
        random.Random(f"{seed}/{epoch}/shards").shuffle(order)
    stream = [s | {"shard": shards[i]["name"]} for i in order for s in shards[i]["samples"]]
    for place, sample in enumerate(stream):
        sample["place"] = place
    if len(stream) < world_size:
        raise ValueError(f"{len(stream)} samples cannot feed {world_size} ranks")
    rng = random.Random(f"{seed}/{epoch}/buffer")
    if shuffle and buffer > 1:
        stream = _shuffle_buffer(stream, buffer, rng)
    if max_frames is None:
        size = batch_size * world_size
        batches = [stream[i:i + size] for i in range(0, len(stream), size)]
    else:
        batches = []
        for w in range(0, len(stream), max(buffer, 1)):
            window = sorted(stream[w:w + max(buffer, 1)], key=lambda s: (s["length"], s["place"]))
            bucket: list[list[Sample]] = []
            for sample in window:
                if bucket and sum(s["length"] for s in bucket[-1]) + sample["length"] <= max_frames * world_size:
                    bucket[-1].append(sample)
                else:
                    bucket.append([sample])  # a clip longer than the budget goes alone (then merged below)
            if shuffle:
                rng.shuffle(bucket)
            batches += bucket
    # every rank needs a sample in every step (DDP steps together): a global batch of fewer
    # samples than ranks joins its neighbour
    merged: list[list[Sample]] = []
    for batch in batches:
        if merged and (len(batch) < world_size or len(merged[-1]) < world_size):
            merged[-1] = merged[-1] + batch
        else:
            merged.append(batch)
    # rank r takes every world_size-th sample of a global batch: equal counts (within one) and,
    # in a length-sorted bucket, equal frame totals
    return [batch[rank::world_size] for batch in merged]


def _shuffle_buffer(items: list[Sample], size: int, rng: random.Random) -> list[Sample]:
    """WebDataset's shuffle: keep ``size`` items, emit a random one as each new one arrives."""
    out, held = [], []
    for item in items:
        held.append(item)
        if len(held) >= size:
            i = rng.randrange(len(held))
            held[i], held[-1] = held[-1], held[i]
            out.append(held.pop())
    rng.shuffle(held)
    return out + held


class ShardStream(IterableDataset):
    """An epoch's batches of one split's shards, for a ``DataLoader(stream, batch_size=None)``.

    Args:
        store: the split's shards (with ``index.json``), or their folder or URL.
        make_item: ``(clip, key, train) -> item dict`` (the corpus's dataset item from the
            decoded arrays; its torch/NumPy randomness is seeded per sample).
        collate: items -> batch dict (:func:`avtoolkit.data.contract.collate`).
        batch_size: samples per batch, or
        max_frames: most frames per batch, summed over its clips (bucketed by length).
        shuffle: shuffle shards, samples (buffer) and batches; reseeded every epoch.
        buffer: shuffle-buffer size in samples (also the bucketing window).
        seed: the run's seed.
        rank, world_size: this process's place (default: :func:`distributed_rank` at iteration).
        names: the arrays to decode (default: all).
        train: passed to ``make_item``.

    Examples:
        >>> import tempfile
        >>> store = ShardClipStore(tempfile.mkdtemp(), shard_size=2)
        >>> for i in range(5):
        ...     store.write(f"c{i}", {"rois": np.full((3, 4, 4), i, np.uint8)})
        >>> store.close(); _ = store.write_index()
        >>> stream = ShardStream(store, lambda clip, key, train: int(clip.arrays["rois"][0, 0, 0]), list,
        ...                      batch_size=2, shuffle=False)
        >>> list(stream)
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, store: ShardClipStore | str | os.PathLike[str],
                 make_item: Callable[[Clip, str, bool], Any], collate: Callable[[list[Any]], Any], *,
                 batch_size: int | None = None, max_frames: int | None = None, shuffle: bool = False,
                 buffer: int = 256, seed: int = 0, rank: int | None = None, world_size: int | None = None,
                 names: Sequence[str] | None = None, train: bool = False) -> None:
        self.store = store if isinstance(store, ShardClipStore) else ShardClipStore(store)
        index = self.store.read_index()
        if index is None:
            raise DatasetNotFoundError(f"{self.store.location}: no index.json; finish the preparation with "
                                    f"`avtoolkit prepare RECIPE --format shards --index`")
        self.shards = index["shards"]
        self.samples = int(index["samples"])
        self.make_item, self.collate = make_item, collate
        self.options = {"batch_size": batch_size, "max_frames": max_frames, "shuffle": shuffle,
                        "buffer": buffer, "seed": seed}
        self.rank, self.world_size = rank, world_size
        self.names = names
        self.train = train
        self.epoch = 0
        self.start_batch = 0

    def place(self) -> tuple[int, int]:
        """``(rank, world size)`` this stream plans for."""
        rank, world = distributed_rank()
        return (rank if self.rank is None else self.rank), (world if self.world_size is None else self.world_size)

    def plan(self, epoch: int | None = None) -> list[list[Sample]]:
        """This rank's batches of ``epoch`` (default: the current one)."""
        rank, world = self.place()
        return plan_epoch(self.shards, self.epoch if epoch is None else epoch, rank, world, **self.options)

    def __len__(self) -> int:
        """The epoch's batches, also when it resumes at ``start_batch`` (a trainer counts the ones it took:
        Lightning stops a resumed epoch when its restored batch count reaches this)."""
        return len(self.plan())

    def set_epoch(self, epoch: int) -> None:
        """Starts ``epoch`` from its first batch."""
        self.epoch, self.start_batch = int(epoch), 0

    def state_dict(self) -> dict[str, int]:
        """Where the epoch is, given the batches the consumer has taken (save it with them)."""
        return {"epoch": self.epoch, "start_batch": self.start_batch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Continues epoch ``state["epoch"]`` after ``state["batches"]`` consumed batches
        (or ``start_batch``, as :meth:`state_dict` writes it)."""
        self.epoch = int(state["epoch"])
        self.start_batch = int(state.get("batches", state.get("start_batch", 0)))

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        batches = self.plan()
        handles: dict[str, Any] = {}
        try:
            for position in range(self.start_batch + worker, len(batches), workers):
                items = []
                # Without loader workers the items are made in the training process: keep its RNG as
                # it was, or the seeding below would set the dropout of the next step, and a resumed
                # run (whose RNG state is restored from the checkpoint) would differ from a straight one.
                with _kept_rng(info is None):
                    for sample in batches[position]:
                        # the sample's place in the epoch seeds its augmentation, whoever decodes it
                        seed = np.random.SeedSequence([self.options["seed"], self.epoch, sample["place"]])
                        state = seed.generate_state(2)
                        # the CPU generator only: torch.manual_seed also queues CUDA seeding with a stack trace
                        torch.default_generator.manual_seed(int(state[0]))
                        np.random.seed(int(state[1]))
                        random.seed(int(state[1]))
                        if sample["shard"] not in handles:
                            handles[sample["shard"]] = _open(self.store.location, sample["shard"])
                        try:
                            clip = read_sample(handles[sample["shard"]], sample, self.names)
                        except Exception as exc:
                            exc.add_note(f"while reading {self.store.location}/{sample['shard']}:{sample['key']}")
                            raise
                        items.append(self.make_item(clip, sample["key"], self.train))
                yield self.collate(items)
        finally:
            for fh in handles.values():
                fh.close()


def stream_loader(stream: ShardStream, workers: int) -> DataLoader:
    """The ``DataLoader`` of a :class:`ShardStream`: batches come whole from the stream, workers in turn.

    Not ``persistent_workers``: each epoch's iterator starts workers that plan that epoch.
    """
    return DataLoader(stream, batch_size=None, num_workers=workers, in_order=True)


@contextlib.contextmanager
def _kept_rng(keep: bool) -> Iterator[None]:
    """Puts the CPU torch, NumPy and ``random`` RNG states back as they were afterwards (when ``keep``)."""
    if not keep:
        yield
        return
    saved = torch.default_generator.get_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.default_generator.set_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


class StreamedTraining:
    """Mixin of a datamodule whose training split may come from a :class:`ShardStream`: its place in the epoch.

    Lightning saves a datamodule's :meth:`state_dict` in every checkpoint and gives it back to
    :meth:`load_state_dict` before it asks for the loaders; the place saved is the epoch and the
    number of training batches that reached the model (:meth:`on_after_batch_transfer` counts
    them, after Lightning's prefetch and the loader workers' read-ahead, so none is lost or
    repeated). :meth:`train_stream` starts the stream there when it makes that epoch's loader.
    The datamodule sets :attr:`streamed` when its training split is a stream.

    Examples:
        >>> class Data(StreamedTraining):
        ...     streamed = True
        >>> data = Data()
        >>> data.load_state_dict({"train_stream": {"epoch": 2, "batches": 3, "world_size": 1, "epoch_batches": 5}})
        >>> data.resume_position()
        {'epoch': 2, 'batches': 3, 'world_size': 1, 'epoch_batches': 5}
    """

    #: the training split is streamed (so its position inside an epoch can be saved)
    streamed: bool = False
    _taken = 0
    _epoch_batches = 0
    _train_epoch = 0
    _resume: dict[str, int] | None = None

    @property
    def resumable_mid_epoch(self) -> bool:
        """Whether a checkpoint inside an epoch can resume exactly (``trainer.checkpoint_every_n_steps``)."""
        return bool(self.streamed)

    def resume_position(self) -> dict[str, int] | None:
        """The position a checkpoint gave to :meth:`load_state_dict` (``None``: none)."""
        return self._resume

    def state_dict(self) -> dict[str, Any]:
        if not self.streamed:
            return {}
        return {"train_stream": {"epoch": self._train_epoch, "batches": self._taken,
                                 "world_size": distributed_rank()[1], "epoch_batches": self._epoch_batches}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = dict(state_dict["train_stream"]) if state_dict.get("train_stream") else None

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.training:
            self._taken += 1
        return batch

    def train_stream(self, stream: ShardStream, epoch: int) -> ShardStream:
        """``stream`` set to ``epoch``, from the checkpoint's place when it was saved inside that epoch.

        Raises:
            UsageError: the checkpoint's epoch was planned for another number of processes or
                another number of batches (other shards, batch size or frame budget): its place
                would point at other samples.
        """
        from avtoolkit.errors import UsageError

        stream.set_epoch(epoch)
        self._train_epoch, self._taken, self._epoch_batches = epoch, 0, len(stream)
        saved = self._resume
        if saved is not None and int(saved["epoch"]) == epoch and 0 < int(saved["batches"]) < self._epoch_batches:
            world = stream.place()[1]
            if (int(saved["world_size"]), int(saved["epoch_batches"])) != (world, self._epoch_batches):
                raise UsageError(
                    f"cannot resume inside epoch {epoch + 1}: the checkpoint was saved by {saved['world_size']} "
                    f"process(es) stepping through {saved['epoch_batches']} batches, this run has {world} and "
                    f"{self._epoch_batches} (other trainer.devices/num_nodes, batch size, max_frames or shards). "
                    "Resume with the settings it was saved with")
            stream.load_state_dict(saved)
            self._taken = int(saved["batches"])
        return stream
