"""``run_recipe``: train on the train split, keep the best checkpoint, test it.

Lightning is the loop, the checkpointing and the distributed layer; this module only turns
a recipe into a ``Trainer``, an :class:`~avtoolkit.engine.task.AVTask` and a run directory.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities import rank_zero_only

from avtoolkit.engine.callbacks import EpochSeeder, EpochSummary, FiniteGuard, FreezeParts
from avtoolkit.engine.step_checkpoint import StepCheckpoint, mid_epoch_place
from avtoolkit.engine.checkpoint_io import AtomicCheckpointIO
from avtoolkit.models.checkpoint import (
    StateDiff,
    load_pretrained,
    model_state_dict,
    read_checkpoint,
)
from avtoolkit.engine.ema import EMA
from avtoolkit.engine.precision import resolve_precision
from avtoolkit.engine.preflight import check_freezing, check_optimizer, check_resume
from avtoolkit.engine.resolve import resolve_run
from avtoolkit.engine.rundir import (
    RUN_DIR_ENV,
    check_run_dir,
    clear_run_dir,
    plot_curves,
    remove_stale_temporaries,
    resolve_run_dir,
    results_table,
    run_logging,
    truncate_metrics,
    write_manifest,
    write_results,
)
from avtoolkit.engine.runlock import RunLock
from avtoolkit.engine.task import AVTask
from avtoolkit.errors import TrainingDivergedError, UsageError
from avtoolkit.models.assemble import assemble
from avtoolkit.models.parts import PartLoad, frozen_parts, init_parts
from avtoolkit.recipe import Problem, Recipe, RecipeError
from avtoolkit.recipe.schema import (EarlyStoppingConfig, EmaConfig, LoggingConfig, PretrainedConfig, TrainerConfig,
                                     section)

log = logging.getLogger("avtoolkit.engine")


class _NoProductTips(logging.Filter):
    """Drops Lightning's "💡 Tip: try installing <cloud product>" lines; every other line stays.

    They are advertisements, printed on every run, and they buried the demo's progress.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoProductTips())

LAST = "last.ckpt"
BEST = "best.ckpt"


def trainer_kwargs(recipe: Recipe) -> dict[str, Any]:
    """``lightning.Trainer`` arguments from the recipe's ``trainer`` section.

    ``trainer.precision`` goes through :func:`~avtoolkit.engine.precision.resolve_precision`
    (``auto``: bf16 where this hardware has it natively, else fp32); the choice and why are
    logged (a warning where a bf16 precision is emulated).
    """
    cfg = section(TrainerConfig, recipe.get("trainer"))
    choice = resolve_precision(cfg.precision, cfg.accelerator)
    (log.warning if choice.emulated else log.info)("%s", choice.log_line())
    kwargs: dict[str, Any] = {
        "max_epochs": cfg.max_epochs,
        "accelerator": cfg.accelerator,
        "devices": cfg.devices,
        "num_nodes": cfg.num_nodes,
        "strategy": cfg.strategy,
        "precision": choice.precision,
        "gradient_clip_val": cfg.gradient_clip_val,
        "accumulate_grad_batches": cfg.accumulate_grad_batches,
        "deterministic": cfg.deterministic,
        "log_every_n_steps": cfg.log_every_n_steps,
        "enable_progress_bar": cfg.progress_bar,
        # A fresh train iterator each epoch, created after EpochSeeder reseeds: otherwise the
        # first epoch after --resume would reuse the shuffle order Lightning drew while
        # estimating the schedule length, before the restore.
        "reload_dataloaders_every_n_epochs": 1,
    }
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
        if getattr(cfg, key) is not None:
            kwargs[key] = getattr(cfg, key)
    return kwargs


def _loggers(recipe: Recipe, run_dir: Path) -> list[Any]:
    cfg = section(LoggingConfig, recipe.get("logging"))
    loggers: list[Any] = []
    if cfg.tensorboard:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=""))
    if cfg.wandb:
        try:
            import wandb  # noqa: F401
        except ImportError:
            log.warning("logging.wandb is set but wandb is not installed (pip install wandb): not logging to W&B")
        else:
            from lightning.pytorch.loggers import WandbLogger

            loggers.append(WandbLogger(project=cfg.wandb, name=run_dir.name, save_dir=str(run_dir)))
    return loggers


def run_recipe(recipe: Any, overrides: list[str] | None = None, run_dir: str | os.PathLike[str] | None = None,
               resume: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
               callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Trains a recipe, keeps the best checkpoint by the monitored metric, and tests it.

    Nothing in the run directory is written before every check has passed (recipe, dataset,
    directory, resume compatibility, lock), so a refused command leaves it as it was.

    Args:
        recipe: a recipe path, mapping or :class:`Recipe`; ``None`` with ``resume`` uses the
            run's own ``recipe.yaml``.
        overrides: ``key.path=value`` strings (e.g. ``["trainer.max_epochs=2"]``).
        run_dir: where everything of the run goes; default ``runs/<name>-<timestamp>``. It must
            be empty or absent unless ``overwrite``.
        resume: a run directory whose ``checkpoints/last.ckpt`` to continue from (weights,
            optimizer, schedule, EMA, epoch, early stopping).
        overwrite: delete the run already in ``run_dir`` (only after every check has passed).
        callbacks: extra Lightning callbacks.

    Returns:
        The test metrics of ``best.ckpt`` (``test/acc``, ``test/wer`` ...).

    Raises:
        RecipeError: the recipe does not validate.
        CheckpointError: ``resume`` or ``pretrained`` weights do not fit the model.
            (``init`` parts that do not fit are a ``RecipeError`` naming each ``init.N`` key.)
        FileNotFoundError: ``resume`` has no ``checkpoints/last.ckpt``.
        RunDirectoryError: ``run_dir`` holds another run, or another process is using it.
        UsageError: contradictory arguments, or ``resume`` with changed schedule settings.
        TrainingDivergedError: the loss stayed NaN/inf for ``trainer.max_bad_steps`` steps, or
            a weight or buffer became NaN/inf (never saved).
    """
    ckpt_path: Path | None = None
    if resume is not None:
        resume_dir = Path(resume)
        if overwrite:
            raise UsageError(f"--resume {resume_dir} and --overwrite contradict each other; choose one")
        ckpt_path = resume_dir / "checkpoints" / LAST
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume {resume_dir}: no checkpoints/{LAST} there (is it a run directory?)")
        if run_dir is not None and Path(run_dir).resolve() != resume_dir.resolve():
            raise UsageError(f"--resume {resume_dir} continues in its own directory; drop --run-dir {run_dir}")
        recipe = resume_dir / "recipe.yaml" if recipe is None else recipe
        run_dir = resume_dir
    is_zero = rank_zero_only.rank == 0
    if is_zero and run_dir is not None:
        check_run_dir(Path(run_dir), resume is not None, overwrite)  # cheap: before building the dataset
    resolved = resolve_run(recipe, overrides)
    rec = resolved.recipe
    _check_step_checkpoints(rec, resolved.datamodule)
    seed = int(rec.get("seed") if rec.get("seed") is not None else 0)
    threads = section(TrainerConfig, rec.get("trainer")).threads
    if threads is not None:
        torch.set_num_threads(threads)
    L.seed_everything(seed, workers=True, verbose=False)
    model = assemble(rec["model"])
    finished_epochs: int | None = None
    if ckpt_path is not None:
        finished_epochs = check_resume(ckpt_path, rec, model)
    pretrained = _load_pretrained(rec, model) if ckpt_path is None else None
    # `init` parts after `pretrained`, so they replace it where both give a part; a resumed run's
    # checkpoint holds them already (and their files may be gone).
    parts = init_parts(model, rec) if ckpt_path is None else []
    frozen = frozen_parts(rec)
    check_freezing(rec, frozen)
    task = AVTask(model, rec.tree, resolved.vocabulary)
    check_optimizer(rec, task)

    out = resolve_run_dir(rec.name, run_dir)
    lock = RunLock(out)
    if is_zero:
        # Every check has passed: only now does anything in the run directory change.
        out.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    previous_env = os.environ.get(RUN_DIR_ENV)
    stale: list[Path] = []
    dropped = 0
    try:
        if is_zero:
            check_run_dir(out, resume is not None, overwrite)  # again, now under the lock
            if overwrite:
                clear_run_dir(out)
            # Under the lock no live writer owns a temporary: these were left by a killed run.
            stale = remove_stale_temporaries(out)
            dropped = truncate_metrics(out / "metrics.csv", finished_epochs) if finished_epochs is not None else 0
            (out / "checkpoints").mkdir(exist_ok=True)
            write_manifest(out, rec.to_yaml())
        os.environ[RUN_DIR_ENV] = str(out.resolve())  # processes Lightning launches for DDP inherit it
        with run_logging(out / "training.log" if is_zero else None):
            if is_zero and stale:
                log.info("removed %d temporary file(s) left by a killed run: %s", len(stale),
                         ", ".join(str(p.relative_to(out)) for p in stale))
            if is_zero and dropped:
                log.info("metrics.csv: dropped %d row(s) of epochs after %d, which the resumed checkpoint does not "
                         "hold (they are trained again)", dropped, finished_epochs)
            try:
                extra = [FreezeParts(frozen)] if frozen else []
                return _fit_and_test(rec, resolved.datamodule, task, pretrained, parts, out, ckpt_path, seed,
                                     is_zero, extra + list(callbacks))
            except TrainingDivergedError as exc:
                _note_last_good(exc, out / "checkpoints" / LAST)
                # In training.log too (the console gets it from the command line's handler).
                logging.getLogger("avtoolkit.runlog").error("%s", "\n".join([str(exc), *exc.__notes__]))
                raise
    finally:
        lock.release()
        if previous_env is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous_env


def _check_step_checkpoints(rec: Recipe, datamodule: Any) -> None:
    """Refuses ``trainer.checkpoint_every_n_steps`` for a dataset that cannot resume inside an epoch.

    A per-clip (npz) dataset is read through a shuffling sampler whose place Lightning does not
    save, with augmentation drawn by whichever loader worker gets an item: resumed inside an
    epoch it would repeat and skip clips. Its runs resume exactly at epoch ends.
    """
    key = "trainer.checkpoint_every_n_steps"
    if section(TrainerConfig, rec.get("trainer")).checkpoint_every_n_steps is None:
        return
    if getattr(datamodule, "resumable_mid_epoch", False):
        return
    data = rec.get("data") or {}
    raise RecipeError([Problem(key, f"needs a streamed dataset (data.store_format: shards, with data.name lrw or "
                                    f"grid); data.name {data.get('name')!r} with data.store_format "
                                    f"{data.get('store_format', 'npz')!r} resumes exactly only at epoch ends, so "
                                    "drop the key (last.ckpt is written after every epoch)", rec.where(key))],
                      str(rec.source) if rec.source else None)


def _note_last_good(exc: TrainingDivergedError, last: Path) -> None:
    """Adds to a divergence error which checkpoint is the last good one (or that there is none)."""
    if not last.is_file():
        exc.add_note("no checkpoint was written (it diverged in the first epoch)")
        return
    checkpoint = read_checkpoint(last)
    place = mid_epoch_place(checkpoint)
    epoch = int(checkpoint.get("epoch", -1)) + 1
    where = f"epoch {epoch} after {place['batches']} batches" if place else f"end of epoch {epoch}"
    exc.add_note(f"last good checkpoint: {last} ({where}, all weights finite); to go on with other "
                 f"settings, start a new run with pretrained.path={last}")


def _load_pretrained(rec: Recipe, model: Any) -> tuple[Path, StateDiff] | None:
    """Loads ``pretrained.path`` into ``model`` (before the run directory is touched)."""
    pretrained = section(PretrainedConfig, rec.get("pretrained"))
    if not pretrained.path:
        return None
    path = rec.resolve_path(pretrained.path)
    return path, load_pretrained(model, path, strict=pretrained.strict)


def _fit_and_test(rec: Recipe, dm: Any, task: AVTask, pretrained: tuple[Path, StateDiff] | None,
                  parts: list[PartLoad], out: Path, ckpt_path: Path | None, seed: int, is_zero: bool,
                  extra: list[L.Callback]) -> dict[str, float]:
    log.info("run directory: %s", out)
    if pretrained is not None:
        path, diff = pretrained
        if diff.clean:
            log.info("pretrained: loaded every weight from %s", path)
        else:
            log.warning("pretrained: partial load from %s (strict: false); these keep their fresh weights:\n%s",
                        path, diff.describe())
    for part in parts:
        (log.info if part.diff.clean else log.warning)("init: %s", part.describe())
    ckpt_dir = out / "checkpoints"
    # Two callbacks: Lightning 2.6 rewrites `last` only when a top-k file was just saved, and
    # a resumable run needs last.ckpt after every epoch. Both save at the end of the training
    # epoch, after validation, so the saved loop state is "epoch finished".
    checkpointing = ModelCheckpoint(
        dirpath=str(ckpt_dir), filename=BEST[: -len(".ckpt")], monitor=task.monitor, mode=task.monitor_mode,
        save_top_k=1, save_last=False, save_on_train_epoch_end=True, auto_insert_metric_name=False,
        enable_version_counter=False)
    last_checkpoint = ModelCheckpoint(
        dirpath=str(ckpt_dir), filename=LAST[: -len(".ckpt")], monitor=None, save_top_k=1,
        save_on_train_epoch_end=True, auto_insert_metric_name=False, enable_version_counter=False)
    cbs: list[L.Callback] = [EpochSeeder(seed), FiniteGuard()]  # the guard before EMA: see FiniteGuard
    ema_cfg = section(EmaConfig, rec.get("ema"))
    if ema_cfg.enabled:
        cbs.append(EMA(ema_cfg.decay))
    stop_cfg = section(EarlyStoppingConfig, rec.get("early_stopping"))
    stopper: EarlyStopping | None = None
    if stop_cfg.enabled:
        stopper = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=stop_cfg.patience,
                                min_delta=stop_cfg.min_delta, check_on_train_epoch_end=True)
        cbs.append(stopper)
    # last in the list (before Lightning's ModelCheckpoints): it saves what EMA and the others did in the step
    every = section(TrainerConfig, rec.get("trainer")).checkpoint_every_n_steps
    cbs += [EpochSummary(out / "metrics.csv" if is_zero else None), *extra, StepCheckpoint(every, ckpt_dir / LAST),
            checkpointing, last_checkpoint]
    trainer = L.Trainer(**trainer_kwargs(rec), callbacks=cbs, logger=_loggers(rec, out) or False,
                        default_root_dir=str(out), plugins=[AtomicCheckpointIO()])
    place = mid_epoch_place(read_checkpoint(ckpt_path)) if ckpt_path is not None else None
    if ckpt_path is not None:
        log.info("resuming from %s%s", ckpt_path,
                 f" (inside epoch {place['epoch'] + 1}, after {place['batches']} batches)" if place else "")
    with warnings.catch_warnings():
        if place is not None:
            # Lightning warns of any loader that is not its `_Stateful` kind; the stream's place
            # comes back through the datamodule's state (datasets/_stream.py, StreamedTraining).
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        trainer.fit(task, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None)
    stopped = _early_stopping_report(stopper, trainer)

    best = Path(checkpointing.best_model_path) if checkpointing.best_model_path else ckpt_dir / LAST
    if not best.is_file():
        raise FileNotFoundError(f"training finished without writing a checkpoint in {ckpt_dir}")
    task.model.load_state_dict(model_state_dict(read_checkpoint(best)))
    results = trainer.test(task, datamodule=dm, verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if is_zero:
        best_score = checkpointing.best_model_score
        write_results(out / "results.json", metrics, {
            "checkpoint": str(best), "monitor": task.monitor, "monitor_mode": task.monitor_mode,
            "best_score": float(best_score) if best_score is not None else None,
            "epochs": trainer.current_epoch, "global_step": trainer.global_step,
            "recipe": rec.name, "task": task.task, "early_stopping": stopped})
        if section(LoggingConfig, rec.get("logging")).plots:
            plot_curves(out / "metrics.csv", out / "curves.png")
        log.info("%s", results_table(metrics, f"test results of {best}"))
    return metrics


def _early_stopping_report(stopper: EarlyStopping | None, trainer: L.Trainer) -> dict[str, Any]:
    """Whether early stopping ended the run (for results.json), logged when it did.

    Lightning's EarlyStopping is silent unless verbose, so without this line a run that
    stopped at epoch 3 of 100 would look like a crash or a short recipe.
    """
    # The reason is part of the callback's state, so a resumed run that had stopped says so too.
    if stopper is None or stopper.stopping_reason == EarlyStoppingReason.NOT_STOPPED:
        return {"stopped": False}
    epoch = int(stopper.stopped_epoch) + 1
    if trainer.is_global_zero:  # one line per run, not one per DDP process
        log.info("early stopping after epoch %d of %s: %s", epoch, trainer.max_epochs,
                 stopper.stopping_reason_message)
    return {"stopped": True, "stopped_after_epoch": epoch, "max_epochs": trainer.max_epochs,
            "reason": stopper.stopping_reason_message}
