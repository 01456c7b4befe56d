"""Checks a run passes before it writes anything: a resume fits its checkpoint, the optimizer builds,
frozen parts run in one process.

Lightning would find these problems only inside ``fit``, after the run directory had been
written; checking first keeps a refused command from changing anything on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avtoolkit.models.checkpoint import META_KEY, compare_state_dicts, model_state_dict, read_checkpoint
from avtoolkit.engine.optim import build_optimizer, build_scheduler
from avtoolkit.engine.step_checkpoint import mid_epoch_place
from avtoolkit.engine.task import AVTask
from avtoolkit.errors import CheckpointError, UsageError
from avtoolkit.recipe import Problem, Recipe, RecipeError
from avtoolkit.recipe.schema import TrainerConfig, section


#: recipe keys a resumed run must keep: the restored optimizer and LR schedule were built from
#: them (a cosine curve for 30 epochs does not become one for 4 by changing max_epochs).
RESUME_FIXED = ("trainer.max_epochs", "trainer.accumulate_grad_batches", "trainer.limit_train_batches",
                "batch_size", "data.batch_size", "optim", "schedule")
#: ``data`` keys a run resumed inside an epoch may change (where the files are, how many processes
#: read them); every other data key, and the process count, plan the epoch it continues.
MID_EPOCH_FREE_DATA = frozenset({"root", "cache_dir", "shards_dir", "workers", "prepare_workers"})
MID_EPOCH_FIXED = ("trainer.devices", "trainer.num_nodes")


def _dotted(recipe: Any, path: str) -> Any:
    """``recipe["a"]["b"]`` for ``"a.b"``, ``None`` where a level is missing."""
    value = recipe
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def check_resume(ckpt_path: Path, rec: Recipe, model: Any) -> int:
    """Refuses a resume whose model or schedule-shaping settings differ from the checkpoint's.

    A checkpoint written inside an epoch (``trainer.checkpoint_every_n_steps``) also keeps the
    ``data`` section (but :data:`MID_EPOCH_FREE_DATA`) and :data:`MID_EPOCH_FIXED`: the epoch it
    continues was planned with them.

    Returns:
        The number of epochs the checkpoint has finished (its ``epoch`` + 1, or its ``epoch``
        when it was written inside that epoch).

    Raises:
        CheckpointError: the model's keys or shapes differ (each named).
        UsageError: a key of :data:`RESUME_FIXED` differs (old and new values named).
    """
    checkpoint = read_checkpoint(ckpt_path)
    diff = compare_state_dicts(model.state_dict(), model_state_dict(checkpoint, prefer_ema=False))
    if not diff.clean:
        raise CheckpointError(f"cannot resume from {ckpt_path}: the recipe's model differs from the "
                              f"checkpoint's:\n{diff.describe()}")
    place = mid_epoch_place(checkpoint)
    finished = int(checkpoint.get("epoch", -1)) + (0 if place else 1)
    stored = (checkpoint.get(META_KEY) or {}).get("recipe")
    if not isinstance(stored, dict):
        return finished  # not written by avtoolkit run; the model check above is all we can do
    new, old = rec.tree, stored
    keys = list(RESUME_FIXED)
    if place:
        data_keys = sorted(set(old.get("data") or {}) | set(new.get("data") or {}))
        keys += [f"data.{k}" for k in data_keys if k not in MID_EPOCH_FREE_DATA and f"data.{k}" not in keys]
        keys += MID_EPOCH_FIXED
    changed = [f"{k}: {_dotted(old, k)!r} -> {_dotted(new, k)!r}" for k in keys
               if _dotted(old, k) != _dotted(new, k)]
    if changed and place:
        raise UsageError(f"cannot resume from {ckpt_path} (written inside epoch {place['epoch'] + 1}, after "
                         f"{place['batches']} batches) with {'; '.join(changed)}: its optimizer, schedule and the "
                         "batches of that epoch were made with the old values. Drop the override(s), or start a new run (--run-dir NEW) "
                         "with pretrained.path set to this checkpoint")
    if changed:
        raise UsageError(f"cannot resume from {ckpt_path} with {'; '.join(changed)}: the run's optimizer and "
                         "learning-rate schedule were built for the old values. Drop the override(s), or start "
                         "a new run (--run-dir NEW) with pretrained.path set to this checkpoint")
    return finished


def check_optimizer(rec: Recipe, task: AVTask) -> None:
    """Builds the optimizer and schedule once on the side, so their errors come before any write.

    Lightning builds them only inside ``fit``, after the run directory has been written; an
    out-of-range value (``optim.lr=-1``) would then fail a run that already replaced files.

    Raises:
        RecipeError: the ``optim`` or ``schedule`` section is refused by torch (its message kept).
    """
    try:
        optimizer = build_optimizer(task.model.parameters(), rec.get("optim") or {})
        build_scheduler(optimizer, rec.get("schedule") or {}, total_steps=100, steps_per_epoch=10,
                        monitor=task.monitor, monitor_mode=task.monitor_mode)
    except RecipeError:
        raise
    except (ValueError, TypeError) as exc:
        raise RecipeError([Problem("optim", f"{exc} (while building the optimizer and its schedule)",
                                   rec.where("optim"))], str(rec.source) if rec.source else None) from exc


def check_freezing(rec: Recipe, frozen: dict[str, int]) -> None:
    """Refuses ``init.*.freeze_epochs`` with a trainer section that asks for several processes.

    DDP builds its gradient reducer once, over the parameters that need gradients then, so a
    part unfrozen later would train apart on every process. (``devices: auto`` on a machine
    with several devices is refused by the callback when the processes start.)

    Raises:
        UsageError: naming the frozen parts and the trainer keys.
    """
    if not frozen:
        return
    cfg = section(TrainerConfig, rec.get("trainer"))
    devices = len(cfg.devices) if isinstance(cfg.devices, (list, tuple)) else cfg.devices
    if (isinstance(devices, int) and devices > 1) or cfg.num_nodes > 1:
        raise UsageError(f"init.*.freeze_epochs ({', '.join(frozen)}) needs a single-process run, but trainer.devices="
                         f"{cfg.devices!r}, trainer.num_nodes={cfg.num_nodes}: DDP would never reduce the gradients of "
                         "parts unfrozen later. Set freeze_epochs: 0 or train on one device")
