"""Exponential moving average of the model weights, as a Lightning callback."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from avtoolkit.models.checkpoint import EMA_KEY


class EMA(L.Callback):
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    Validation runs on the averaged weights (swapped in for the loop, swapped back after),
    so the monitored metric, and therefore ``best.ckpt``, is the EMA model's. The shadow
    weights are saved in the checkpoint (callback state ``"EMA"``) next to the trained
    weights, so ``--resume`` continues both and
    :func:`avtoolkit.models.checkpoint.load_model` returns the EMA model.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first ``n``
    updates (as TensorFlow's and timm's EMA do), so short runs are not dominated by the
    random initial weights.

    Not Lightning's ``WeightAveraging``: it writes the average into the checkpoint's
    ``state_dict`` and the trained weights beside it, which would change what ``--resume`` and
    :func:`~avtoolkit.models.checkpoint.load_model` read, and it has no decay warm-up.

    Args:
        decay: the long-run decay per optimizer step.
    """

    def __init__(self, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema.decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow: dict[str, Tensor] | None = None
        self._backup: dict[str, Tensor] | None = None
        self._last_step = -1

    @property
    def state_key(self) -> str:
        return EMA_KEY

    @staticmethod
    def _model_state(pl_module: L.LightningModule) -> dict[str, Tensor]:
        return pl_module.model.state_dict()  # type: ignore[union-attr, operator]

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = self._model_state(pl_module)
        if self.shadow is None:
            self.shadow = {k: v.detach().clone() for k, v in state.items()}
        else:  # restored from a checkpoint on the CPU
            self.shadow = {k: v.to(state[k].device) for k, v in self.shadow.items()}
        self._last_step = trainer.global_step

    @torch.no_grad()
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # Update once per optimizer step (not per micro-batch under gradient accumulation).
        if trainer.global_step == self._last_step or self.shadow is None:
            return
        self._last_step = trainer.global_step
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for name, value in self._model_state(pl_module).items():
            ema = self.shadow[name]
            if value.dtype.is_floating_point:
                ema.mul_(decay).add_(value.detach().to(ema.dtype), alpha=1.0 - decay)
            else:
                ema.copy_(value)

    def _swap_in(self, pl_module: L.LightningModule) -> None:
        if self.shadow is None or self._backup is not None:
            return
        self._backup = {k: v.detach().clone() for k, v in self._model_state(pl_module).items()}
        pl_module.model.load_state_dict(self.shadow)  # type: ignore[union-attr, operator]

    def _swap_out(self, pl_module: L.LightningModule) -> None:
        if self._backup is None:
            return
        pl_module.model.load_state_dict(self._backup)  # type: ignore[union-attr, operator]
        self._backup = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit":
            self._swap_in(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._swap_out(pl_module)

    def state_dict(self) -> dict[str, Any]:
        shadow = {k: v.detach().cpu().clone() for k, v in (self.shadow or {}).items()}
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": shadow}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.num_updates = int(state_dict["num_updates"])
        self.shadow = dict(state_dict["shadow"]) or None
