"""The LightningModule around an :class:`~avtoolkit.models.AVModel`: the training loop.

The head's ``task`` names the registered objective (:mod:`avtoolkit.objectives`) that owns
the loss, the metrics and decoding: ``"classification"`` (NLL with label smoothing and
optional mixup; top-1 and top-5 accuracy) or ``"ctc"`` (CTC loss; WER and CER of greedy
decoding during validation, of the recipe's decoder at test time). This module keeps what
every objective shares: skipping non-finite steps, logging, optimizers and the checkpoint
metadata.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import lightning as L
import torch
from torch import Tensor
from torchmetrics.aggregation import MeanMetric

from avtoolkit import __version__
from avtoolkit.models.checkpoint import META_KEY
from avtoolkit.engine.memory_format import to_channels_last
from avtoolkit.engine.optim import build_optimizer, build_scheduler
from avtoolkit.errors import TrainingDivergedError
from avtoolkit.objectives import objective_class
from avtoolkit.recipe.schema import TrainerConfig, section

log = logging.getLogger("avtoolkit.engine")


class AVTask(L.LightningModule):
    """Trains and evaluates one recipe model.

    Args:
        model: the assembled :class:`~avtoolkit.models.AVModel`.
        recipe: the resolved recipe dict (saved into every checkpoint).
        vocabulary: class names or CTC tokens (blank first), from the dataset.
    """

    def __init__(self, model: torch.nn.Module, recipe: Mapping[str, Any], vocabulary: list[str]) -> None:
        super().__init__()
        self.model = model
        self.recipe = dict(recipe)
        self.vocabulary = list(vocabulary)
        self.task: str = model.task  # type: ignore[assignment]
        #: the objective the head's task names: loss, metrics, predictions, test decoder
        self.objective = objective_class(self.task)(self.vocabulary, self.recipe.get("loss"))
        self.objective.attach(self.model)  # decoders that run part of the model (attention) reach it
        trainer_cfg = section(TrainerConfig, self.recipe.get("trainer"))
        self.max_bad_steps = int(trainer_cfg.max_bad_steps)
        if trainer_cfg.channels_last:
            to_channels_last(self.model)
        self.monitor, self.monitor_mode = monitor_of(self.recipe, self.task)
        self._bad_steps = 0
        #: finite and non-finite training steps of the current epoch
        self._epoch_steps = [0, 0]
        #: the step counts a checkpoint saved inside an epoch, for that epoch's resumed start
        self._resumed_steps: dict[str, Any] | None = None
        #: the epoch's mean training loss (weighted by batch size), as a metric whose running sums a
        #: checkpoint inside an epoch saves: Lightning keeps the mean of a logged tensor only in
        #: memory, so a resumed epoch's row in metrics.csv would average only the steps after the
        #: resume. Per process, as the logged tensor was (rank 0's is the one written).
        self.train_loss = MeanMetric(sync_on_compute=False)
        #: metric prefix of test_step: "test", or the split evaluated ("val").
        self.eval_prefix = "test"
        #: when a list, test_step appends {id, reference, prediction, score} rows to it.
        self.predictions: list[dict[str, Any]] | None = None

    # ---- training ---------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor | None:
        loss = self.objective.training_loss(self.model, batch)
        bad = not bool(torch.isfinite(loss))
        if self.trainer.world_size > 1:
            # Every process must skip together or DDP's gradient all-reduce would hang.
            bad = self.trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            self._bad_steps += 1
            self._epoch_steps[1] += 1
            log.warning("non-finite loss (%s) at epoch %d step %d: skipping this step (%d in a row, limit %d)",
                        float(loss.detach()), self.current_epoch, self.global_step, self._bad_steps,
                        self.max_bad_steps)
            if self._bad_steps >= self.max_bad_steps:
                raise TrainingDivergedError(
                    f"the loss was NaN or infinite for {self._bad_steps} steps in a row (trainer.max_bad_steps="
                    f"{self.max_bad_steps}) at epoch {self.current_epoch}; stopped. The last good checkpoint is "
                    "intact: lower optim.lr, set trainer.gradient_clip_val, or check the data")
            return None
        self._bad_steps = 0
        self._epoch_steps[0] += 1
        self.train_loss(loss.detach(), _batch_size(batch))
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def on_train_start(self) -> None:
        # Resumed from a checkpoint written inside an epoch, Lightning goes on with that epoch
        # without calling on_train_epoch_start: its step counts and loss sums come back here.
        resumed, self._resumed_steps = self._resumed_steps, None
        if resumed is not None and self.trainer.fit_loop.restarted_mid_epoch:
            self._epoch_steps, self._bad_steps = list(resumed["epoch_steps"]), int(resumed["bad_steps"])
            total, weight = resumed.get("loss_sums", (0.0, 0.0))
            self.train_loss.mean_value.fill_(total)
            self.train_loss.weight.fill_(weight)

    def on_train_epoch_start(self) -> None:
        self._epoch_steps = [0, 0]

    def on_train_epoch_end(self) -> None:
        # Runs before the checkpoint callbacks save: an epoch without a single finite loss
        # (each streak shorter than max_bad_steps) learned nothing and must not become last.ckpt.
        good, bad = self._epoch_steps
        if bad and not good:
            raise TrainingDivergedError(
                f"training diverged in epoch {self.current_epoch + 1} (up to step {self.global_step}): the loss "
                f"was NaN or infinite at all {bad} steps; this epoch was not saved. Lower optim.lr, set "
                "trainer.gradient_clip_val, or check the data")

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model.parameters(), self.recipe.get("optim") or {})
        total = int(self.trainer.estimated_stepping_batches)
        steps_per_epoch = total / max(1, self.trainer.max_epochs or 1)
        scheduler = build_scheduler(optimizer, self.recipe.get("schedule") or {}, total_steps=total,
                                    steps_per_epoch=steps_per_epoch, monitor=self.monitor,
                                    monitor_mode=self.monitor_mode)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    # ---- validation and test --------------------------------------------------------------
    def _evaluate(self, batch: Mapping[str, Any], stage: str, prefix: str) -> None:
        out = self.model(batch)
        loss = self.objective.loss(out, batch)
        bs = _batch_size(batch)
        if torch.isfinite(loss):
            self.log(f"{prefix}/loss", loss, on_epoch=True, sync_dist=True, batch_size=bs)
        for logged in self.objective.evaluate(out, batch, stage, self.predictions):
            self.log(f"{prefix}/{logged.name}", logged.metric, on_epoch=True, prog_bar=logged.prog_bar, batch_size=bs)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.eval_prefix)

    def on_test_start(self) -> None:
        self.objective.prepare_test(self.recipe.get("decoding") or {})

    # ---- checkpoints ---------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[META_KEY] = {"recipe": self.recipe, "vocabulary": self.vocabulary, "task": self.task,
                                "version": __version__}
        checkpoint[STEPS_KEY] = {"epoch": self.current_epoch, "epoch_steps": list(self._epoch_steps),
                                 "bad_steps": self._bad_steps,
                                 "loss_sums": (float(self.train_loss.mean_value), float(self.train_loss.weight))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed_steps = checkpoint.get(STEPS_KEY)


#: the checkpoint key of the training-step counts (finite and skipped steps of the epoch, the skipped streak).
STEPS_KEY = "avtoolkit_steps"


def monitor_of(recipe: Mapping[str, Any], task: str) -> tuple[str, str]:
    """The monitored metric and mode: the recipe's, else the objective's (``val/acc`` max, ``val/wer`` min).

    Raises:
        ValueError: ``monitor_mode`` is not ``min`` or ``max``, or no objective is named ``task``.
    """
    default_metric, default_mode = objective_class(task).monitor
    metric = recipe.get("monitor") or default_metric
    mode = recipe.get("monitor_mode") or (default_mode if metric == default_metric else
                                          ("min" if metric.endswith(("loss", "wer", "cer")) else "max"))
    if mode not in ("min", "max"):
        from avtoolkit.recipe import RecipeError

        raise RecipeError(f"monitor_mode: must be 'min' or 'max', got {mode!r}")
    return metric, mode


def _batch_size(batch: Mapping[str, Any]) -> int:
    for key in ("label", "target_lengths", "video", "audio"):
        value = batch.get(key)
        if isinstance(value, Tensor):
            return int(value.shape[0])
    return 1
