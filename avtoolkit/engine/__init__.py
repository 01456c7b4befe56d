"""The training and evaluation engine, built on Lightning.

* :func:`~avtoolkit.engine.run.run_recipe` trains a recipe, keeps the best checkpoint and
  tests it; :func:`~avtoolkit.engine.evaluate.evaluate` tests a checkpoint.
* :func:`~avtoolkit.models.checkpoint.load_model` rebuilds a trained model from a run's
  checkpoint (weights-only loading).
"""

from avtoolkit.models.checkpoint import CheckpointError, LoadedModel, load_model
from avtoolkit.engine.evaluate import evaluate
from avtoolkit.engine.run import run_recipe
from avtoolkit.engine.task import TrainingDivergedError

__all__ = ["CheckpointError", "LoadedModel", "TrainingDivergedError", "evaluate", "load_model", "run_recipe"]
