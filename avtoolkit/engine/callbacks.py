"""Small Lightning callbacks of the engine: per-epoch seeding, the finite-weights guard, frozen
parts, summary line and metrics.csv (mid-epoch checkpoints: :mod:`avtoolkit.engine.step_checkpoint`)."""

from __future__ import annotations

import csv
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from avtoolkit.atomic import atomic_write
from avtoolkit.errors import TrainingDivergedError, UsageError

log = logging.getLogger("avtoolkit.engine")


class EpochSeeder(L.Callback):
    """Reseeds every RNG from ``seed + epoch`` before each training epoch draws randomness.

    Lightning does not save RNG states in checkpoints, so without this a resumed run
    would shuffle, augment and drop out differently from one that never stopped. Seeding at
    the start of every training epoch, followed by exactly one creation of the train iterator
    (which draws the sampler's and the loader workers' seeds), makes epoch ``e`` draw the same
    numbers either way, with loader workers too. (It also reseeds at the start of ``fit``,
    after the sanity check and at the end of each epoch, for what runs outside the epochs.)
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        #: the epoch the next training epoch seeds with; saved in checkpoints because
        #: Lightning's ``current_epoch`` right after a restore depends on where it saved.
        self.next_epoch: int | None = None

    @property
    def state_key(self) -> str:
        return "EpochSeeder"

    def _reseed(self, trainer: L.Trainer) -> None:
        epoch = self.next_epoch if self.next_epoch is not None else trainer.current_epoch
        # seeds are within [0, 2**32 - 1] (validated): the last one plus an epoch wraps round.
        L.seed_everything((self.seed + epoch) % 2**32, workers=True, verbose=False)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reseed(trainer)

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reseed(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning (2.6) creates the train iterator a varying number of times before an epoch's
        # first batch: in `FitLoop.setup_data` (once or twice after a restore, depending on the
        # epoch it saved at) and again in `_TrainingEpochLoop.on_run_start`, except in epoch 0 and
        # the first epoch of a resumed fit. Each creation draws a base seed from the global RNG
        # (the loader workers' seeds; a new single-process iterator too), so a resumed epoch
        # shuffled, augmented and seeded its workers differently from a run that never stopped.
        # Reseed here, then make sure exactly one iterator is created after it: ours where the
        # epoch loop will not make one, else the epoch loop's.
        self.next_epoch = trainer.current_epoch
        self._reseed(trainer)
        _drop_persistent_workers(trainer.train_dataloader)
        loop = trainer.fit_loop
        fetcher = getattr(loop, "_data_fetcher", None)
        if fetcher is not None and (trainer.current_epoch == 0 or loop.is_resuming or loop.epoch_loop.restarting):
            iter(fetcher)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.next_epoch = trainer.current_epoch + 1
        self._reseed(trainer)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "next_epoch": self.next_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.next_epoch = state_dict.get("next_epoch")


def _drop_persistent_workers(loaders: Any) -> None:
    """Shuts down the worker processes a ``persistent_workers`` loader keeps, so its next ``iter()``
    starts new ones seeded from the global RNG as it is now (a kept pool keeps the seeds it was
    started with, drawn before the epoch's reseed)."""
    found = loaders.values() if isinstance(loaders, dict) else loaders if isinstance(loaders, (list, tuple)) else [loaders]
    for loader in found:
        iterator = getattr(loader, "_iterator", None)
        if isinstance(loader, torch.utils.data.DataLoader) and iterator is not None:
            shutdown = getattr(iterator, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            loader._iterator = None


def first_non_finite(module: torch.nn.Module) -> str | None:
    """The name of the first parameter or buffer holding a NaN or infinity, else ``None``.

    Examples:
        >>> bn = torch.nn.BatchNorm1d(2)
        >>> first_non_finite(bn) is None
        True
        >>> _ = bn.running_mean.fill_(float("nan"))
        >>> first_non_finite(bn)
        'running_mean'
    """
    tensors = [(n, t.detach()) for n, t in [*module.named_parameters(), *module.named_buffers()]
               if t.is_floating_point() and t.numel()]  # an empty tensor has no infinity norm
    if not tensors:
        return None
    # Fast path, run after every step: the largest |value| over all tensors (foreach kernels,
    # one device sync) is NaN or inf exactly when some value is; it cannot overflow as a sum would.
    largest = torch.nn.utils.get_total_norm([t for _, t in tensors], norm_type=float("inf"))
    if bool(torch.isfinite(largest)):
        return None
    return next(n for n, t in tensors if not bool(t.isfinite().all()))


class FiniteGuard(L.Callback):
    """Stops training at the first optimizer step after which a weight or buffer is not finite.

    Skipping a step whose loss is NaN keeps the weights, but the forward pass has already
    written BatchNorm's running statistics; a huge learning rate can overflow the weights while
    the loss still looks finite. Either way no checkpoint may hold them: the error stops the
    run before the epoch-end checkpoints, so ``last.ckpt`` stays the last finite one. It must
    come before EMA in the callback list so the average never absorbs them either.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        bad = first_non_finite(pl_module)
        diverged = bad is not None
        if trainer.world_size > 1:
            # BatchNorm buffers differ per process: all stop together or the others hang.
            diverged = trainer.strategy.reduce_boolean_decision(diverged, all=False)
        if not diverged:
            return
        what = f"'{bad.removeprefix('model.')}'" if bad else "a buffer on another process"
        raise TrainingDivergedError(
            f"training diverged at epoch {trainer.current_epoch + 1} step {trainer.global_step}: "
            f"{what} became NaN or infinite; it was not saved. Lower optim.lr, "
            "set trainer.gradient_clip_val, or check the data")


#: the normalisation layers whose running statistics a frozen part keeps (evaluation mode).
BATCH_NORMS = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.SyncBatchNorm)


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


class FreezeParts(L.Callback):
    """Keeps parts of the model fixed for their first epochs (``init.N.freeze_epochs``), then trains them.

    While a part is frozen its parameters have ``requires_grad`` off, so they get no gradient and
    the optimizer (built over every parameter, so it still holds them) leaves them as they are,
    weight decay included; its BatchNorm layers are in evaluation mode, so their running
    statistics stay too. The state is set from the epoch number at the start of every training
    epoch, so a resumed run freezes exactly as one that never stopped. Not under DDP: its reducer
    is built once over the parameters that then need gradients.

    Args:
        parts: dotted part of ``pl_module.model`` (``encoders.video``) -> epochs it stays frozen.
    """

    def __init__(self, parts: dict[str, int]) -> None:
        self.parts = dict(parts)
        self._frozen: set[str] = set()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.world_size > 1:
            raise UsageError(f"init.*.freeze_epochs ({', '.join(self.parts)}) needs a single-process run; DDP "
                             "would never reduce the gradients of parts unfrozen later. Set freeze_epochs: 0")

    def _set(self, module: torch.nn.Module, prefix: str, frozen: bool) -> int:
        count = 0
        for name, param in module.named_parameters():
            if _is_under(name, prefix):
                param.requires_grad_(not frozen)
                count += param.numel()
        for name, sub in module.named_modules():
            if _is_under(name, prefix) and isinstance(sub, BATCH_NORMS):
                sub.train(not frozen)
        return count

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Resumed inside an epoch (trainer.checkpoint_every_n_steps), Lightning goes on with it
        # without on_train_epoch_start: set that epoch's state here (a fresh start repeats it, harmlessly).
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model: torch.nn.Module = pl_module.model  # type: ignore[assignment]
        epoch = trainer.current_epoch
        for prefix, epochs in self.parts.items():
            frozen = epoch < epochs
            if frozen:
                count = self._set(model, prefix, True)
                if prefix not in self._frozen:
                    log.info("init: %s frozen (%d parameters, BatchNorm statistics kept) until the end of epoch %d",
                             prefix, count, epochs)
                self._frozen.add(prefix)
            elif prefix in self._frozen:  # a model built fresh (or resumed later) trains every part already
                count = self._set(model, prefix, False)
                log.info("init: %s unfrozen from epoch %d (%d parameters)", prefix, epoch + 1, count)
                self._frozen.discard(prefix)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run shorter than freeze_epochs: leave a model that trains as a whole if used again.
        for prefix in list(self._frozen):
            self._set(pl_module.model, prefix, False)  # type: ignore[arg-type]
        self._frozen.clear()


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


class EpochSummary(L.Callback):
    """One line per epoch (stdout and training.log) and one row per epoch in ``metrics.csv``.

    The CSV is appended to, so a resumed run continues the same file; a new metric name
    rewrites the header. Not Lightning's ``CSVLogger``: that writes a row per logged step into a
    new ``version_N/`` folder on every start, so a resumed run would split its history.
    """

    def __init__(self, metrics_csv: Path | None) -> None:
        self.metrics_csv = metrics_csv
        self._start = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if not k.endswith("_step") and getattr(v, "numel", lambda: 1)() == 1}
        metrics = {k[:-len("_epoch")] if k.endswith("_epoch") else k: v for k, v in metrics.items()}
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        row: dict[str, Any] = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step, "lr": lr}
        row.update(sorted(metrics.items()))
        shown = "  ".join(f"{k} {_fmt(v)}" for k, v in row.items() if k not in ("epoch", "step"))
        line = (f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}  step {trainer.global_step}  {shown}  "
                f"({time.monotonic() - self._start:.1f}s)")
        bar = trainer.progress_bar_callback
        if bar is not None and hasattr(bar, "print"):
            bar.print(line)
        else:
            print(line, flush=True)
        _file_only(line)
        if self.metrics_csv is not None:
            append_csv_row(self.metrics_csv, row)


def _file_only(line: str) -> None:
    """Writes to training.log without echoing to the console (the line was printed already)."""
    logging.getLogger("avtoolkit.runlog").info(line)


def append_csv_row(path: Path, row: dict[str, Any]) -> None:
    """Appends ``row`` to a CSV file, rewriting it when ``row`` brings new columns.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
        >>> append_csv_row(p, {"epoch": 1, "a": 0.5}); append_csv_row(p, {"epoch": 2, "b": 1})
        >>> p.read_text().splitlines()
        ['epoch,a,b', '1,0.5,', '2,,1']
    """
    rows: list[dict[str, Any]] = []
    fields: list[str] = []
    if path.is_file():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = list(reader)
    new = [k for k in row if k not in fields]
    if new or not path.is_file():
        fields += new
        rows.append(row)
        with atomic_write(path, "w") as f:  # a kill mid-rewrite keeps the old rows
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\r\n")
            writer.writeheader()
            writer.writerows(rows)
    else:
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow(row)
