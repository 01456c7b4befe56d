"""ONNX export of recipe models, checked against ONNX Runtime on a real example.

The graph's inputs and outputs are described in :mod:`avtoolkit.inference.runtime`, which
runs it. The vocabulary, modalities, rates and the resolved recipe are stored in the file's
metadata so :class:`~avtoolkit.inference.Transcriber` runs a CTC graph without the checkpoint.
Turning a trained checkpoint into a verified file is :mod:`avtoolkit.inference.deploy`'s job.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from avtoolkit.errors import ExportError
from avtoolkit.inference.runtime import META_KEY, OnnxInfo, OnnxModel, pad_to_common_frames
from avtoolkit.objectives import objective_class
from avtoolkit.registry.kinds import OBJECTIVES


def export_outputs(task: str | None) -> dict[str, dict[int, str]]:
    """The graph outputs of a model of head ``task``, in order, with their dynamic axes (its objective's ``outputs``).

    Raises:
        ValueError: no registered objective of that name exports.

    Examples:
        >>> export_outputs("ctc")
        {'log_probs': {0: 'batch', 1: 'frames'}, 'lengths': {0: 'batch'}}
    """
    outputs = objective_class(task).outputs if task in OBJECTIVES else None
    if outputs is None:
        exporting = [n for n in OBJECTIVES.names() if objective_class(n).outputs is not None]
        names = ", ".join(exporting[:-1]) + " and " + exporting[-1] if len(exporting) > 1 else "".join(exporting)
        raise ValueError(f"export supports {names} models; this model's task is {task!r}")
    return {name: dict(axes) for name, axes in outputs.items()}


class BatchGraph(nn.Module):
    """Positional-tensor view of a batch-dict :class:`~avtoolkit.models.AVModel` for ONNX export.

    The exporter traces positional tensors; the model takes one batch dict.

    Args:
        model: the model.
        inputs: the batch keys, in the order the positional tensors come.
        outputs: the keys of the model's output dict to return, in order.
    """

    def __init__(self, model: nn.Module, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.inputs, self.outputs = list(inputs), list(outputs)

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        out = self.model(dict(zip(self.inputs, tensors)))
        return tuple(out[k] for k in self.outputs)


def stream_strides(model: nn.Module) -> dict[str, float]:
    """Input frames per fused frame for each modality (audio_cnn at 100 Hz fused at 25 Hz: 4)."""
    out_rate = model.fusion.output_rate if model.fusion is not None else None
    strides = {}
    for m, enc in model.encoders.items():
        strides[m] = enc.input_rate / (out_rate or enc.output_rate)
    return strides


def trace_to_onnx(graph: nn.Module, inputs: tuple[Tensor, ...], path: str | os.PathLike[str],
                  input_names: list[str], output_names: list[str],
                  dynamic_axes: Mapping[str, Mapping[int, str]], opset: int = 17) -> Path:
    """Traces a positional-tensor module to an ONNX file (the one exporter call of avtoolkit).

    Used by :func:`export_onnx` (recipe models, with metadata and a parity check); the int8
    tests trace plain networks with it.

    Returns:
        The written path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The exporter restores the wrapper's mode after tracing, recursively: a training-mode
    # wrapper would leave the wrapped model training.
    graph = graph.eval()
    # PyTorch's fused Transformer layer (its inference "fast path") has no ONNX mapping; with it
    # off the exporter sees plain attention and linear ops.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Shape-to-int conversions are traced as constants on purpose (fixed crop size,
            # streams padded to common frames); callers check the graph, not the warnings.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # The TorchScript exporter: the dynamo one needs onnxscript, not a dependency here.
            torch.onnx.export(graph, inputs, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                              opset_version=opset, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return path


def export_onnx(model: nn.Module, example: Mapping[str, Tensor], path: str | os.PathLike[str],
                vocabulary: Sequence[str], recipe: Mapping[str, Any] | None = None, opset: int = 17,
                atol: float = 1e-4, extra_inputs: Sequence[str] = ()) -> float:
    """Exports a recipe model to ONNX and checks ONNX Runtime against PyTorch.

    Args:
        model: a CTC or classification :class:`~avtoolkit.models.AVModel` (put in eval mode).
        example: a real batch (``audio``, ``video`` and their ``*_lengths``) used for tracing
            and for the parity check; every model modality must be present.
        path: the ``.onnx`` file to write.
        vocabulary: the CTC tokens (blank first) or the class names, stored in the metadata.
        recipe: the resolved recipe, stored in the metadata.
        opset: ONNX opset version.
        atol: largest allowed absolute difference of the log-probabilities.
        extra_inputs: other batch keys the model reads; they become graph inputs too
            (``word_boundary`` for a ``word_classifier`` with ``use_word_boundary``).

    Returns:
        The largest absolute log-probability difference measured on ``example`` (over the
        valid frames) and on the same example with one modality left out.

    Raises:
        ValueError: the model's task does not export, or the example lacks an input.
        ExportError: ONNX Runtime differs from PyTorch by more than ``atol``.
    """
    import onnx

    task = getattr(model, "task", None)
    output_axes = export_outputs(task)
    model = model.eval()
    modalities = sorted(model.modalities)
    reads = modalities + list(extra_inputs)
    missing = [k for k in reads if k not in example]
    if missing:
        raise ValueError(f"the export example lacks {missing}; the model reads {reads}")
    strides = stream_strides(model)
    example = pad_to_common_frames(example, strides)
    names = [n for m in modalities for n in (m, f"{m}_lengths")] + list(extra_inputs)
    outputs = list(output_axes)
    # One time-axis name per input: streams run at different rates (audio 500 frames, video
    # 125), and ONNX Runtime plans its buffers as if equal names meant equal sizes.
    axes = {n: ({0: "batch"} if n.endswith("_lengths") else {0: "batch", 1: f"{n}_time"}) for n in names}
    axes.update(output_axes)
    graph = BatchGraph(model, names, outputs).eval()  # the exporter restores the wrapper's mode, recursively
    path = trace_to_onnx(graph, tuple(example[n] for n in names), path, names, outputs, axes, opset)
    info = OnnxInfo(vocabulary=list(vocabulary), modalities=modalities, strides=strides,
                    recipe=dict(recipe or {}), task=task, note=objective_class(task).export_note)
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, info.to_json()
    onnx.save(proto, str(path))
    return verify_onnx(model, path, example, atol=atol)


def verify_onnx(model: nn.Module, path: str | os.PathLike[str], example: Mapping[str, Tensor],
                atol: float = 1e-4) -> float:
    """Largest |ONNX - PyTorch| log-probability over valid frames, with all and with each single modality.

    Raises:
        ExportError: a difference above ``atol`` or different output lengths.
    """
    runner = OnnxModel(path)
    subsets = [list(runner.info.modalities)]
    if len(runner.info.modalities) > 1:
        subsets += [[m] for m in runner.info.modalities]
    worst = 0.0
    for subset in subsets:
        left_out = {n for m in runner.info.modalities if m not in subset for n in (m, f"{m}_lengths")}
        batch = {k: v for k, v in example.items() if k not in left_out}
        with torch.no_grad():
            ref = model(batch)
        got = runner(batch)
        if "lengths" not in ref:  # a classifier: one row of log-probs per example, no padding
            worst = max(worst, (got["log_probs"] - ref["log_probs"]).abs().max().item())
            continue
        if not torch.equal(got["lengths"].long(), ref["lengths"].long()):
            raise ExportError(f"{path}: ONNX lengths {got['lengths'].tolist()} != PyTorch "
                              f"{ref['lengths'].tolist()} with inputs {subset}")
        for i, n in enumerate(ref["lengths"].tolist()):
            d = (got["log_probs"][i, :n] - ref["log_probs"][i, :n]).abs().max().item() if n else 0.0
            worst = max(worst, d)
    if not worst <= atol:
        raise ExportError(f"{path}: ONNX Runtime log-probs differ from PyTorch by {worst:.2e} > {atol:.0e}")
    return worst
