"""The objective contract: what a head's ``task`` trains for and how a model of it is scored.

A head names its objective (:attr:`~avtoolkit.models.contract.Head.task`); the objective
registered under that name owns the loss, the metrics and what they are logged as, the
default monitor, the greedy prediction rows of ``evaluate --save-predictions``, the test-time
decoder, the ONNX export outputs and the commands that accept its checkpoints. The training
loop around it (skipping bad steps, logging, checkpoint metadata, optimizers) is the engine's
:class:`~avtoolkit.engine.task.AVTask`, which stays the same for every objective.

Torch and torchmetrics only, no Lightning: export and the transcriber read the class
attributes without training anything.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, NamedTuple, Sequence

from torch import Tensor, nn

from avtoolkit.recipe.schema import LossConfig, section

#: evaluation stages, each with its own metric objects.
STAGES = ("val", "test")


class Logged(NamedTuple):
    """A metric the engine logs as ``<prefix>/<name>`` (``val/acc``) after a batch updated it."""

    name: str
    metric: Any
    prog_bar: bool = False


class Objective(nn.Module):
    """Loss, metrics and decoding of one head task (a registered ``objective``).

    An ``nn.Module`` so that its metrics follow the model to the device; it has no weights,
    and its metric states are not saved in checkpoints.

    Subclasses set the class attributes, which are read without building one:

    * ``monitor``: the default ``(metric, mode)`` the best checkpoint, early stopping and
      ``plateau`` schedules watch (``("val/acc", "max")``).
    * ``outputs``: the model outputs an ONNX export returns, in the graph's order, each with its
      dynamic axes (``{"log_probs": {0: "batch"}}``); ``None``: models of it do not export.
    * ``export_note``: what that graph leaves out, if anything (stored in its metadata).
    * ``commands``: the commands that accept its checkpoints (``("predict",)``), and ``usage``:
      how the error for another command points to the right one.

    Args:
        vocabulary: class names or CTC tokens (blank first), from the dataset.
        loss: the recipe's ``loss`` section (:class:`~avtoolkit.recipe.schema.LossConfig`).
    """

    monitor: ClassVar[tuple[str, str]]
    outputs: ClassVar[Mapping[str, Mapping[int, str]] | None] = None
    #: what an ONNX export of its models leaves out, stored in the file and printed by ``export``
    export_note: ClassVar[str] = ""
    commands: ClassVar[tuple[str, ...]] = ()
    usage: ClassVar[str] = "its own command"

    def __init__(self, vocabulary: Sequence[str], loss: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.vocabulary = list(vocabulary)
        self.settings = section(LossConfig, loss or {})

    def loss(self, out: Mapping[str, Tensor], batch: Mapping[str, Any]) -> Tensor:  # pragma: no cover
        """The loss of the model's outputs ``out`` on ``batch`` (validation and test use it too)."""
        raise NotImplementedError

    def training_loss(self, model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        """The loss of one training step; runs the model (an objective may change its inputs)."""
        return self.loss(model(batch), batch)

    def evaluate(self, out: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str,
                 rows: list[dict[str, Any]] | None = None) -> list[Logged]:  # pragma: no cover
        """Updates the metrics of ``stage`` (``"val"`` or ``"test"``) with one batch.

        Args:
            out: the model's outputs.
            batch: the batch.
            stage: whose metric objects to update.
            rows: when a list, one ``{id, reference, prediction, score}`` row per example is
                appended to it.

        Returns:
            The metrics to log, in order.
        """
        raise NotImplementedError

    def prepare_test(self, decoding: Mapping[str, Any]) -> None:
        """Called before testing with the recipe's ``decoding`` section (CTC builds its decoder)."""

    def attach(self, model: nn.Module) -> None:
        """Gives the objective the model it scores, for decoders that run part of it (an attention decoder).

        Kept out of the module tree: the objective's state (and a checkpoint) never holds the model twice.
        """
        self.__dict__["_scored_model"] = model

    @property
    def model(self) -> nn.Module | None:
        """The model given to :meth:`attach`, or ``None``."""
        return self.__dict__.get("_scored_model")

    @classmethod
    def build_decoder(cls, decoding: Mapping[str, Any] | None, vocabulary: Sequence[str],
                      model: Any = None) -> Callable[[Mapping[str, Tensor]], list[str]]:
        """The decoder ``model outputs -> texts`` that ``decoding`` names, for models of this objective.

        Used by :class:`~avtoolkit.inference.Transcriber`; only objectives whose commands
        transcribe have one.

        Raises:
            NotImplementedError: this objective does not decode to text.
        """
        raise NotImplementedError(f"{cls.__name__} models are not decoded to text")


def example_id(batch: Mapping[str, Any], i: int) -> str:
    """The ``id`` of a prediction row: the batch's ``ids``, else the position in the batch.

    Examples:
        >>> example_id({"ids": ["s1", "s2"]}, 1), example_id({}, 1)
        ('s2', '1')
    """
    ids = batch.get("ids")
    return str(ids[i]) if ids is not None else str(i)
