"""``evaluate``: test a trained checkpoint on a split, optionally writing each prediction."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

import lightning as L

from avtoolkit.models.checkpoint import CheckpointError, LoadedModel, load_model
from avtoolkit.engine.resolve import resolve_run
from avtoolkit.engine.run import trainer_kwargs
from avtoolkit.engine.task import AVTask
from avtoolkit.errors import UsageError

log = logging.getLogger("avtoolkit.engine")

SPLITS = ("test", "val")
PREDICTION_FORMATS = (".csv", ".jsonl")
PREDICTION_FIELDS = ("id", "reference", "prediction", "score")


def write_predictions(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Writes ``id, reference, prediction, score`` rows as CSV or JSON lines (by extension).

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "pred.csv"
        >>> _ = write_predictions([{"id": "s1", "reference": "bin", "prediction": "bin", "score": 0.9}], p)
        >>> p.read_text().splitlines()
        ['id,reference,prediction,score', 's1,bin,bin,0.9']

    Raises:
        UsageError: the extension is neither ``.csv`` nor ``.jsonl``.
    """
    path = Path(path)
    if path.suffix not in PREDICTION_FORMATS:
        raise UsageError(f"--save-predictions {path}: use a .csv or .jsonl file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        if path.suffix == ".csv":
            writer = csv.DictWriter(f, fieldnames=list(PREDICTION_FIELDS))
            writer.writeheader()
            writer.writerows({k: r[k] for k in PREDICTION_FIELDS} for r in rows)
        else:
            for r in rows:
                f.write(json.dumps({k: r[k] for k in PREDICTION_FIELDS}, ensure_ascii=False) + "\n")
    return path


def evaluate(recipe: Any, checkpoint: str | os.PathLike[str], split: str = "test",
             save_predictions: str | os.PathLike[str] | None = None,
             overrides: list[str] | None = None, loaded: LoadedModel | None = None) -> dict[str, float]:
    """Evaluates a checkpoint on one split of the recipe's dataset, in one process.

    The model (architecture and weights, EMA when the run used it) always comes from the
    checkpoint; the recipe supplies the data, decoding and trainer settings.

    Args:
        recipe: a recipe path, mapping or :class:`~avtoolkit.recipe.Recipe`, or ``None`` to
            use the checkpoint's own recipe.
        checkpoint: a run's ``best.ckpt`` or ``last.ckpt``.
        split: ``"test"`` or ``"val"``.
        save_predictions: a ``.csv`` or ``.jsonl`` file for one row per example.
        overrides: ``key.path=value`` strings applied to the recipe.
        loaded: ``checkpoint`` already read by :func:`~avtoolkit.models.checkpoint.load_model`
            (``noise-eval`` reads it once for all its evaluations); ``None`` reads it here.

    Returns:
        Metrics named ``<split>/<metric>`` (``test/acc``, ``val/wer`` ...).

    Raises:
        UsageError: unknown split or prediction file extension.
        CheckpointError: unsafe checkpoint, or its vocabulary differs from the dataset's.
    """
    if split not in SPLITS:
        raise UsageError(f"split must be one of {SPLITS}, got {split!r}")
    if save_predictions is not None and Path(save_predictions).suffix not in PREDICTION_FORMATS:
        raise UsageError(f"--save-predictions {save_predictions}: use a .csv or .jsonl file name")
    if loaded is None:
        loaded = load_model(checkpoint)
    # the checkpoint's model is the one evaluated: its audio encoder says what audio the data gives
    resolved = resolve_run(loaded.recipe if recipe is None else recipe, overrides, model=loaded.recipe["model"])
    if resolved.vocabulary != loaded.vocabulary:
        raise CheckpointError(
            f"{checkpoint}: trained with {len(loaded.vocabulary)} classes/tokens "
            f"({', '.join(loaded.vocabulary[:5])}...) but the dataset has {len(resolved.vocabulary)} "
            f"({', '.join(resolved.vocabulary[:5])}...); evaluate on data with the same vocabulary")
    rec = resolved.recipe
    seed = int(rec.get("seed") if rec.get("seed") is not None else 0)
    L.seed_everything(seed, workers=True, verbose=False)
    data = {**rec.tree, "model": loaded.recipe["model"]}
    task = AVTask(loaded.model, data, loaded.vocabulary)
    task.eval_prefix = split
    task.predictions = [] if save_predictions is not None else None
    kwargs = trainer_kwargs(rec)
    # Metrics over the whole split in one process: no DistributedSampler padding.
    kwargs.update(devices=1, num_nodes=1, strategy="auto")
    kwargs = {k: v for k, v in kwargs.items() if k not in ("max_epochs", "gradient_clip_val",
                                                            "accumulate_grad_batches", "limit_train_batches",
                                                            "limit_val_batches")}
    trainer = L.Trainer(**kwargs, logger=False, enable_checkpointing=False, enable_model_summary=False)
    dm = resolved.datamodule
    if split == "test":
        results = trainer.test(task, datamodule=dm, verbose=False)
    else:
        dm.setup("validate")
        results = trainer.test(task, dataloaders=dm.val_dataloader(), verbose=False)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if save_predictions is not None:
        assert task.predictions is not None
        write_predictions(task.predictions, save_predictions)
        log.info("wrote %d predictions to %s", len(task.predictions), save_predictions)
    return metrics
