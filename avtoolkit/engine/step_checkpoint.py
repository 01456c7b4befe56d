"""Checkpoints inside an epoch (``trainer.checkpoint_every_n_steps``): :class:`StepCheckpoint` writes them
with every process's RNG states; :func:`mid_epoch_place` tells one from an end-of-epoch checkpoint.

The data's place in the epoch is the datamodule's part (its Lightning ``state_dict``; for the
streamed datasets :class:`~avtoolkit.datasets._stream.StreamedTraining`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch


#: the state key of :class:`StepCheckpoint` in a checkpoint's ``callbacks``.
STEP_CHECKPOINT_KEY = "StepCheckpoint"


def rng_states() -> dict[str, Any]:
    """This process's CPU torch, CUDA (when initialised), NumPy and ``random`` RNG states.

    In types ``torch.load(weights_only=True)`` reads (NumPy's key array as a list).

    Examples:
        >>> saved = rng_states(); a = (torch.rand(1), np.random.rand(), random.random())
        >>> set_rng_states(saved); a == (torch.rand(1), np.random.rand(), random.random())
        True
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                              "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Puts back what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def mid_epoch_place(checkpoint: dict[str, Any]) -> dict[str, int] | None:
    """``{"epoch", "batches"}`` of a checkpoint :class:`StepCheckpoint` wrote inside an epoch, else ``None``.

    Examples:
        >>> mid_epoch_place({"callbacks": {"StepCheckpoint": {"mid_epoch": {"epoch": 1, "batches": 4}}}})
        {'epoch': 1, 'batches': 4}
        >>> mid_epoch_place({"epoch": 3}) is None
        True
    """
    state = (checkpoint.get("callbacks") or {}).get(STEP_CHECKPOINT_KEY) or {}
    place = state.get("mid_epoch")
    return {"epoch": int(place["epoch"]), "batches": int(place["batches"])} if place else None


class StepCheckpoint(L.Callback):
    """Writes ``path`` (``last.ckpt``) every ``every_n_steps`` optimizer steps inside an epoch, to resume there.

    The checkpoint holds what Lightning saves (weights, optimizer, schedule, loop progress,
    callback states, the datamodule's place in its stream) and, in this callback's state, the
    place (epoch, batches taken) and every process's RNG states: Lightning saves no RNG
    state, and within an epoch :class:`EpochSeeder`'s reseed is behind us, so dropout and the
    other draws of the training process continue from these after a resume (set before the
    first batch the resumed run trains). The last batch of an epoch writes nothing: the
    end-of-epoch checkpoint follows it. Written through the run's atomic checkpoint I/O, so a
    kill leaves the previous ``last.ckpt``. Put it after every callback that changes state in
    ``on_train_batch_end`` (EMA).

    Args:
        every_n_steps: optimizer steps between checkpoints (``trainer.checkpoint_every_n_steps``);
            ``None`` writes none but still restores a mid-epoch checkpoint's RNG states on resume.
        path: the file to write.
    """

    def __init__(self, every_n_steps: int | None, path: str | Path) -> None:
        self.every_n_steps = every_n_steps
        self.path = Path(path)
        self._saving: dict[str, Any] | None = None
        self._restore: dict[str, Any] | None = None
        self._last_step = -1

    @property
    def state_key(self) -> str:
        return STEP_CHECKPOINT_KEY

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self._restore is not None:
            states = self._restore["rng"]
            set_rng_states(states[trainer.global_rank] if trainer.global_rank < len(states) else states[0])
            self._restore = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if not self.every_n_steps or step == self._last_step or step == 0 or step % self.every_n_steps:
            return  # no optimizer step in this batch (accumulating, or a skipped non-finite loss), or not due
        self._last_step = step
        if batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch's own checkpoint comes next
        rng = [rng_states()]
        if trainer.world_size > 1:
            gathered: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, rng[0])
            rng = gathered
        self._saving = {"mid_epoch": {"epoch": trainer.current_epoch, "batches": batch_idx + 1}, "rng": rng}
        try:
            trainer.save_checkpoint(str(self.path))
        finally:
            self._saving = None

    def state_dict(self) -> dict[str, Any]:
        return self._saving or {"mid_epoch": None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restore = state_dict if state_dict.get("mid_epoch") else None
