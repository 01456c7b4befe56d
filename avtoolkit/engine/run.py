"""``run_recipe``: train on the train split, keep the best checkpoint, test it.

Lightning is the loop, the checkpointing and the distributed layer; this module only turns
a recipe into a ``Trainer``, an :class:`~avtoolkit.engine.task.AVTask` and a run directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.utilities import rank_zero_only

from avtoolkit.engine.callbacks import EpochSeeder, EpochSummary
from avtoolkit.engine.checkpoint import (
    AtomicCheckpointIO,
    CheckpointError,
    compare_state_dicts,
    load_pretrained,
    model_state_dict,
    read_checkpoint,
)
from avtoolkit.engine.ema import EMA
from avtoolkit.engine.resolve import resolve_run, section
from avtoolkit.engine.rundir import RUN_DIR_ENV, plot_curves, resolve_run_dir, results_table, run_logging, write_results
from avtoolkit.engine.task import AVTask
from avtoolkit.models.assemble import assemble
from avtoolkit.recipe import Recipe

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
    """``lightning.Trainer`` arguments from the recipe's ``trainer`` section."""
    cfg = section(recipe, "trainer")
    kwargs: dict[str, Any] = {
        "max_epochs": cfg.max_epochs,
        "accelerator": cfg.accelerator,
        "devices": cfg.devices,
        "num_nodes": cfg.num_nodes,
        "strategy": cfg.strategy,
        "precision": str(cfg.precision),
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
    cfg = section(recipe, "logging")
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


def _resolve_pretrained(path: str, recipe: Recipe) -> Path:
    p = Path(path).expanduser()
    if not p.exists() and not p.is_absolute() and recipe.source is not None:
        beside = Path(recipe.source).parent / p
        if beside.exists():
            return beside
    return p


def _check_resume_fits(ckpt_path: Path, task: AVTask) -> None:
    loaded = model_state_dict(read_checkpoint(ckpt_path), prefer_ema=False)
    diff = compare_state_dicts(task.model.state_dict(), loaded)
    if not diff.clean:
        raise CheckpointError(f"cannot resume from {ckpt_path}: the recipe's model differs from the "
                              f"checkpoint's:\n{diff.describe()}")


def run_recipe(recipe: Any, overrides: list[str] | None = None, run_dir: str | os.PathLike[str] | None = None,
               resume: str | os.PathLike[str] | None = None, *,
               callbacks: Sequence[L.Callback] = ()) -> dict[str, float]:
    """Trains a recipe, keeps the best checkpoint by the monitored metric, and tests it.

    Args:
        recipe: a recipe path, mapping or :class:`Recipe`; ``None`` with ``resume`` uses the
            run's own ``recipe.yaml``.
        overrides: ``key.path=value`` strings (e.g. ``["trainer.max_epochs=2"]``).
        run_dir: where everything of the run goes; default ``runs/<name>-<timestamp>``.
        resume: a run directory whose ``checkpoints/last.ckpt`` to continue from (weights,
            optimizer, schedule, EMA, epoch, early stopping).
        callbacks: extra Lightning callbacks.

    Returns:
        The test metrics of ``best.ckpt`` (``test/acc``, ``test/wer`` ...).

    Raises:
        RecipeError: the recipe does not validate.
        CheckpointError: ``resume`` or ``pretrained`` weights do not fit the model.
        FileNotFoundError: ``resume`` has no ``checkpoints/last.ckpt``.
        TrainingDivergedError: the loss stayed NaN/inf for ``trainer.max_bad_steps`` steps.
    """
    ckpt_path: Path | None = None
    if resume is not None:
        resume_dir = Path(resume)
        ckpt_path = resume_dir / "checkpoints" / LAST
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"--resume {resume_dir}: no checkpoints/{LAST} there (is it a run directory?)")
        if run_dir is not None and Path(run_dir).resolve() != resume_dir.resolve():
            raise ValueError(f"--resume {resume_dir} continues in its own directory; drop --run-dir {run_dir}")
        recipe = resume_dir / "recipe.yaml" if recipe is None else recipe
        run_dir = resume_dir
    resolved = resolve_run(recipe, overrides)
    rec = resolved.recipe
    seed = int(rec.get("seed") if rec.get("seed") is not None else 0)
    L.seed_everything(seed, workers=True, verbose=False)
    model = assemble(rec["model"])

    out = resolve_run_dir(rec.name, run_dir)
    is_zero = rank_zero_only.rank == 0
    previous_env = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(out.resolve())  # processes Lightning launches for DDP inherit it
    if is_zero:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "recipe.yaml").write_text(rec.to_yaml(), encoding="utf-8")
    try:
        with run_logging(out / "training.log" if is_zero else None):
            return _fit_and_test(rec, resolved.datamodule, resolved.vocabulary, model, out, ckpt_path, seed,
                                 is_zero, list(callbacks))
    finally:
        if previous_env is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous_env


def _fit_and_test(rec: Recipe, dm: Any, vocabulary: list[str], model: Any, out: Path, ckpt_path: Path | None,
                  seed: int, is_zero: bool, extra: list[L.Callback]) -> dict[str, float]:
    log.info("run directory: %s", out)
    pretrained = section(rec, "pretrained")
    if pretrained.path and ckpt_path is None:
        path = _resolve_pretrained(pretrained.path, rec)
        diff = load_pretrained(model, path, strict=pretrained.strict)
        if diff.clean:
            log.info("pretrained: loaded every weight from %s", path)
        else:
            log.warning("pretrained: partial load from %s (strict: false); these keep their fresh weights:\n%s",
                        path, diff.describe())
    task = AVTask(model, rec.data, vocabulary)
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
    cbs: list[L.Callback] = [EpochSeeder(seed)]
    ema_cfg = section(rec, "ema")
    if ema_cfg.enabled:
        cbs.append(EMA(ema_cfg.decay))
    stop_cfg = section(rec, "early_stopping")
    stopper: EarlyStopping | None = None
    if stop_cfg.enabled:
        stopper = EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=stop_cfg.patience,
                                min_delta=stop_cfg.min_delta, check_on_train_epoch_end=True)
        cbs.append(stopper)
    cbs += [EpochSummary(out / "metrics.csv" if is_zero else None), *extra, checkpointing, last_checkpoint]
    trainer = L.Trainer(**trainer_kwargs(rec), callbacks=cbs, logger=_loggers(rec, out) or False,
                        default_root_dir=str(out), plugins=[AtomicCheckpointIO()])
    if ckpt_path is not None:
        _check_resume_fits(ckpt_path, task)
        log.info("resuming from %s", ckpt_path)
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
        if section(rec, "logging").plots:
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
