"""Schemas of the recipe sections that are not components.

``model`` and ``data`` sections name registered components and are checked against their
constructor signatures; every other top-level section is one of these dataclasses, so an
unknown key is an error with a suggestion and defaults live in one place: the code that
uses a section reads it through :func:`section`. Every enumerated setting is a ``Literal``,
so a typo in a value fails validation too. This module imports no torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, TypeVar

#: Lightning 2.x ``Trainer(precision=...)`` values (its ``_PRECISION_INPUT``), spelled out
#: here because importing Lightning to read them would import torch.
LightningPrecision = Literal[
    "transformer-engine", "transformer-engine-float16", "16-true", "16-mixed", "bf16-true",
    "bf16-mixed", "32-true", "64-true", "64", "32", "16", "bf16", 64, 32, 16,
]
#: Lightning's values and ``auto``: ``bf16-mixed`` where the hardware has native bf16, else
#: ``32-true`` (:mod:`avtoolkit.engine.precision`; the choice is logged).
Precision = Literal[LightningPrecision, "auto"]
Accelerator = Literal["auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu"]


@dataclass
class TrainerConfig:
    """Lightning ``Trainer`` settings."""

    max_epochs: int = 10
    accelerator: Accelerator = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Precision = "32"
    #: convolution weights in channels-last layout: same values up to rounding order. The LRW
    #: recipes (lrw_effv2t and those built on it) turn it on: their training step ran 2.14x (fp32) /
    #: 1.61x (bf16) on CPU, demo_lrw reached 97.5% top-1 with it (96.7% without). It stays off by
    #: default because it does not pay everywhere (avasr in bf16: 0.93x of bf16 alone).
    channels_last: bool = False
    #: torch's intra-op threads for this run (null: one per core). On a shared machine, two
    #: runs that each use every core stall each other (a 2-core GRID epoch went from 35 s to
    #: 2-4 min beside one busy process); give each run its share, e.g. 1 on 2 cores.
    threads: int | None = None
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    deterministic: bool = False
    log_every_n_steps: int = 10
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None
    limit_test_batches: float | int | None = None
    progress_bar: bool = True
    max_bad_steps: int = 5
    #: also write ``checkpoints/last.ckpt`` every N optimizer steps inside an epoch, with the
    #: data stream's place, so a killed run resumes there exactly (``data.store_format: shards``
    #: only: a per-clip npz dataset resumes exactly at epoch ends; docs/distributed.md).
    checkpoint_every_n_steps: int | None = None


#: settings whose range is narrower than their type: ``section.key -> (lowest, lowest allowed?)``.
BOUNDS: dict[str, tuple[float, bool]] = {
    "trainer.threads": (1.0, True),
    "trainer.max_epochs": (1.0, True),
    "optim.lr": (0.0, False),
    "optim.weight_decay": (0.0, True),
    "optim.momentum": (0.0, True),
    "schedule.min_lr": (0.0, True),
    "schedule.warmup_epochs": (0.0, True),
    "loss.label_smoothing": (0.0, True),
    "loss.mixup_alpha": (0.0, True),
    "init.freeze_epochs": (0.0, True),
    "loss.ctc_weight": (0.0, True),
    "decoding.ctc_weight": (0.0, True),
    "decoding.beam_size": (1.0, True),
    "batch_size": (1.0, True),
    "ema.decay": (0.0, True),
    "early_stopping.patience": (0.0, True),
    "schedule.patience": (0.0, True),
    "schedule.factor": (0.0, False),
    "trainer.accumulate_grad_batches": (1.0, True),
    "trainer.max_bad_steps": (0.0, True),
    "trainer.checkpoint_every_n_steps": (1.0, True),
}

#: settings with a highest allowed value (inclusive): ``section.key -> highest``.
UPPER_BOUNDS: dict[str, float] = {
    "loss.ctc_weight": 1.0,
    "decoding.ctc_weight": 1.0,
    "decoding.beam_size": 10_000.0,
    "batch_size": 1_000_000.0,
    "ema.decay": 1.0,
    "schedule.factor": 1.0,
    "trainer.max_epochs": 1_000_000.0,
    "trainer.threads": 4096.0,
}


@dataclass
class OptimConfig:
    """Optimizer: ``adamw``, ``adam`` or ``sgd``."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    momentum: float = 0.9
    nesterov: bool = False


@dataclass
class ScheduleConfig:
    """Learning-rate schedule: ``cosine`` (linear warm-up, then cosine), ``plateau`` or ``constant``."""

    name: Literal["cosine", "plateau", "constant"] = "cosine"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    factor: float = 0.5
    patience: int = 2


@dataclass
class EmaConfig:
    """Exponential moving average of the weights, used for validation, test and best.ckpt."""

    enabled: bool = False
    decay: float = 0.999


@dataclass
class EarlyStoppingConfig:
    """Stops when ``monitor`` has not improved for ``patience`` validation epochs."""

    enabled: bool = False
    patience: int = 5
    min_delta: float = 0.0


@dataclass
class LossConfig:
    """Loss options: label smoothing (classification, the attention decoder), mixup, ``zero_infinity`` (CTC).

    ``ctc_weight`` is the hybrid objective's share of CTC: ``ctc_weight * CTC + (1 - ctc_weight) *
    attention``. 0.3 is ESPnet's usual value (auto_avsr trains with 0.1).
    """

    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    zero_infinity: bool = True
    ctc_weight: float = 0.3


@dataclass
class DecodingConfig:
    """Decoding: CTC ``greedy`` or ``beam`` (torchaudio / flashlight-text); for hybrid models also
    ``attention`` (greedy attention decoding) and ``joint`` (joint CTC/attention beam search,
    :mod:`avtoolkit.decoding.joint_search`, weighted by ``ctc_weight``, plus ``length_bonus`` per
    character).
    """

    name: Literal["greedy", "beam", "attention", "joint"] = "greedy"
    beam_size: int = 5
    lexicon: str | None = None
    grammar: str | None = None
    lm: str | None = None
    lm_weight: float = 0.5
    word_score: float = 0.0
    ctc_weight: float = 0.3
    length_bonus: float = 0.0


@dataclass
class LoggingConfig:
    """Where metrics go besides ``metrics.csv`` and ``training.log``."""

    tensorboard: bool = True
    wandb: str | None = None
    plots: bool = True


@dataclass
class PretrainedConfig:
    """Initial weights from a checkpoint or state dict; ``strict: false`` allows partial loads."""

    path: str | None = None
    strict: bool = True


@dataclass
class InitConfig:
    """One part of the model initialised from another run's checkpoint or a state dict."""

    #: a run's checkpoint (its EMA weights when it kept them) or a state dict; a relative path is
    #: taken from the working directory, else beside the recipe file. Read when the run starts.
    path: str
    #: the dotted module path of the part in that checkpoint's model (``encoders.video``,
    #: ``backends.0``, ``head``): every key under it is taken.
    take: str
    #: where the part goes in this model (default: ``take``), e.g. ``backends.1``.
    into: str | None = None
    #: every key of the part must be there, with equal shapes, and no other; ``false`` loads
    #: what fits and logs the rest.
    strict: bool = True
    #: the part's weights stay fixed (BatchNorm statistics too) for this many epochs first.
    freeze_epochs: int = 0


#: top-level recipe key -> schema (``None``: checked elsewhere).
SECTIONS: dict[str, type | None] = {
    "trainer": TrainerConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "ema": EmaConfig,
    "early_stopping": EarlyStoppingConfig,
    "loss": LossConfig,
    "decoding": DecodingConfig,
    "logging": LoggingConfig,
    "pretrained": PretrainedConfig,
}

#: top-level recipe keys holding a list of sections, and the schema of each item.
LIST_SECTIONS: dict[str, type] = {
    "init": InitConfig,
}

#: top-level scalar keys and their types.
SCALARS: dict[str, Any] = {
    "name": str,
    "description": str,
    "seed": int,
    "monitor": str,
    "monitor_mode": Literal["min", "max"],
    "batch_size": int,
}

TOP_LEVEL = {"model", "data", *SECTIONS, *LIST_SECTIONS, *SCALARS}

Section = TypeVar("Section")


def section(schema: type[Section], values: Mapping[str, Any] | None) -> Section:
    """One recipe section's settings: the recipe's values over the schema's defaults.

    Keys the schema does not know are left out (validation reports them); the code that
    runs a recipe reads its settings here, so a default is written once, in the schema.

    Examples:
        >>> section(OptimConfig, {"lr": 3e-4}).name
        'adamw'
        >>> section(DecodingConfig, None).beam_size
        5
    """
    known = {f.name for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    return schema(**{k: v for k, v in (values or {}).items() if k in known})
