"""ONNX export of CTC recipe models, checked against PyTorch on a real example.

The graph takes ``audio [B, T_a, 40]``, ``audio_lengths [B]``, ``video [B, T_v, 1, H, W]``,
``video_lengths [B]`` (only the modalities the model has) with dynamic batch and time
axes, and returns ``log_probs [B, T, V]`` and ``lengths [B]``. A modality is left out at
run time by giving it length 0 (the fusions treat that exactly like an absent stream, see
:mod:`avtoolkit.models.fusion._streams`). The streams must cover the same number of fused
frames: :func:`pad_to_common_frames` pads the inputs (padding is masked, so the result
does not change). The vocabulary, modalities, rates and the resolved recipe are stored in
the file's metadata so :class:`~avtoolkit.inference.Transcriber` runs it without the
checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from avtoolkit.errors import ExportError

#: metadata key holding :class:`OnnxInfo` as JSON.
META_KEY = "avtoolkit"


class CTCGraph(nn.Module):
    """Positional-tensor view of a CTC :class:`~avtoolkit.models.AVModel` for ONNX export."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.modalities = sorted(model.modalities)

    def forward(self, *tensors: Tensor) -> tuple[Tensor, Tensor]:
        batch = {}
        for i, m in enumerate(self.modalities):
            batch[m], batch[f"{m}_lengths"] = tensors[2 * i], tensors[2 * i + 1]
        out = self.model(batch)
        return out["log_probs"], out["lengths"]


@dataclass
class OnnxInfo:
    """What a runner needs besides the graph (stored in the ONNX metadata)."""

    vocabulary: list[str]
    modalities: list[str]
    strides: dict[str, float]  # input frames per fused frame, per modality
    recipe: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> "OnnxInfo":
        return cls(**json.loads(text))


def stream_strides(model: nn.Module) -> dict[str, float]:
    """Input frames per fused frame for each modality (audio_cnn at 100 Hz fused at 25 Hz: 4)."""
    out_rate = model.fusion.output_rate if model.fusion is not None else None
    strides = {}
    for m, enc in model.encoders.items():
        strides[m] = enc.input_rate / (out_rate or enc.output_rate)
    return strides


def pad_to_common_frames(batch: Mapping[str, Tensor], strides: Mapping[str, float]) -> dict[str, Tensor]:
    """Pads each present stream's time axis so all give the same number of fused frames.

    Examples:
        >>> b = {"audio": torch.ones(1, 10, 40), "audio_lengths": torch.tensor([10]),
        ...      "video": torch.ones(1, 2, 1, 8, 8), "video_lengths": torch.tensor([2])}
        >>> out = pad_to_common_frames(b, {"audio": 4.0, "video": 1.0})
        >>> out["audio"].shape[1], out["video"].shape[1], out["video_lengths"].tolist()
        (12, 3, [2])
    """
    present = [m for m in strides if m in batch]
    frames = max(math.ceil(batch[m].shape[1] / strides[m]) for m in present)
    out = dict(batch)
    for m in present:
        need = math.ceil(frames * strides[m])
        x = batch[m]
        if x.shape[1] < need:
            pad = x.new_zeros((x.shape[0], need - x.shape[1], *x.shape[2:]))
            out[m] = torch.cat([x, pad], dim=1)
    return out


def fill_missing(batch: Mapping[str, Tensor], modalities: list[str], example_shapes: Mapping[str, tuple[int, ...]],
                 strides: Mapping[str, float]) -> dict[str, Tensor]:
    """Adds a zero-length stand-in for each modality the batch lacks (what the graph needs)."""
    present = [m for m in modalities if m in batch]
    if not present:
        raise ValueError(f"give at least one of {modalities}")
    ref = batch[present[0]]
    fused = math.ceil(ref.shape[1] / strides[present[0]])
    out = dict(batch)
    for m in modalities:
        if m not in batch:
            # As many fused frames as the present streams: the traced graph sizes its output
            # from the streams' shapes, so a shorter stand-in would cut the output short.
            frames = math.ceil(fused * strides[m])
            out[m] = ref.new_zeros((ref.shape[0], frames, *example_shapes[m]))
            out[f"{m}_lengths"] = torch.zeros(ref.shape[0], dtype=torch.long)
    return out


def trace_to_onnx(graph: nn.Module, inputs: tuple[Tensor, ...], path: str | os.PathLike[str],
                  input_names: list[str], output_names: list[str],
                  dynamic_axes: Mapping[str, Mapping[int, str]], opset: int = 17) -> Path:
    """Traces a positional-tensor module to an ONNX file (the one exporter call of avtoolkit).

    Used by :func:`export_onnx` (CTC models, with metadata and a parity check) and by
    :func:`avtoolkit.inference.fast.export_onnx` (any model, for benchmarks).

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
                vocabulary: list[str], recipe: Mapping[str, Any] | None = None, opset: int = 17,
                atol: float = 1e-4) -> float:
    """Exports a CTC model to ONNX and checks ONNX Runtime against PyTorch.

    Args:
        model: a CTC :class:`~avtoolkit.models.AVModel` (put in eval mode).
        example: a real batch (``audio``, ``video`` and their ``*_lengths``) used for tracing
            and for the parity check; every model modality must be present.
        path: the ``.onnx`` file to write.
        vocabulary: the CTC tokens (blank first), stored in the metadata.
        recipe: the resolved recipe, stored in the metadata.
        opset: ONNX opset version.
        atol: largest allowed absolute difference of the log-probabilities.

    Returns:
        The largest absolute log-probability difference measured on ``example`` (over the
        valid frames) and on the same example with one modality left out.

    Raises:
        ValueError: the model is not a CTC model or the example lacks a modality.
        ExportError: ONNX Runtime differs from PyTorch by more than ``atol``.
    """
    import onnx

    if getattr(model, "task", None) != "ctc":
        raise ValueError(f"export supports CTC models; this model's task is {getattr(model, 'task', None)!r}")
    model = model.eval()
    graph = CTCGraph(model).eval()  # the exporter restores the wrapper's mode, recursively
    missing = [m for m in graph.modalities if m not in example]
    if missing:
        raise ValueError(f"the export example lacks {missing}; the model reads {graph.modalities}")
    strides = stream_strides(model)
    example = pad_to_common_frames(example, strides)
    names = [n for m in graph.modalities for n in (m, f"{m}_lengths")]
    axes = {n: ({0: "batch"} if n.endswith("_lengths") else {0: "batch", 1: f"{n}_time"}) for n in names}
    axes |= {"log_probs": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}}
    path = trace_to_onnx(graph, tuple(example[n] for n in names), path, names, ["log_probs", "lengths"], axes,
                         opset)
    info = OnnxInfo(vocabulary=list(vocabulary), modalities=graph.modalities, strides=strides,
                    recipe=dict(recipe or {}))
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, info.to_json()
    onnx.save(proto, str(path))
    diff = verify_onnx(model, path, example, atol=atol)
    return diff


def verify_onnx(model: nn.Module, path: str | os.PathLike[str], example: Mapping[str, Tensor],
                atol: float = 1e-4) -> float:
    """Largest |ONNX - PyTorch| log-probability over valid frames, with all and with each single modality.

    Raises:
        ExportError: a difference above ``atol`` or different output lengths.
    """
    from avtoolkit.inference.onnx_runner import OnnxModel

    runner = OnnxModel(path)
    subsets = [list(runner.info.modalities)]
    if len(runner.info.modalities) > 1:
        subsets += [[m] for m in runner.info.modalities]
    worst = 0.0
    for subset in subsets:
        batch = {k: v for k, v in example.items() if k.split("_")[0] in subset}
        with torch.no_grad():
            ref = model(batch)
        got = runner(batch)
        if not torch.equal(got["lengths"].long(), ref["lengths"].long()):
            raise ExportError(f"{path}: ONNX lengths {got['lengths'].tolist()} != PyTorch "
                              f"{ref['lengths'].tolist()} with inputs {subset}")
        for i, n in enumerate(ref["lengths"].tolist()):
            d = (got["log_probs"][i, :n] - ref["log_probs"][i, :n]).abs().max().item() if n else 0.0
            worst = max(worst, d)
    if not worst <= atol:
        raise ExportError(f"{path}: ONNX Runtime log-probs differ from PyTorch by {worst:.2e} > {atol:.0e}")
    return worst


def _as_numpy(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def recipe_manifest(recipe: Mapping[str, Any], splits: Sequence[str], purpose: str, option: str) -> Path:
    """The first of the recipe's ``data.<split>`` manifests that exists.

    Args:
        recipe: the resolved recipe (a checkpoint's or an ONNX file's).
        splits: the splits to try, in order, e.g. ``("test", "val")``.
        purpose: what the manifest is for, for the error message.
        option: how to give a manifest instead (a CLI option), for the error message.

    Raises:
        FileNotFoundError: none exists; the message names the recipe keys and ``option``.

    Examples:
        >>> recipe_manifest({"data": {"test": "/nowhere/test.txt"}}, ("test", "val"), "the check", "--audio")
        Traceback (most recent call last):
        FileNotFoundError: no manifest for the check: the recipe's data.test / data.val (data.test=/nowhere/test.txt not found); give --audio
    """
    data = recipe.get("data") or {}
    tried = []
    for split in splits:
        if data.get(split):
            path = Path(str(data[split])).expanduser()
            if path.is_file():
                return path
            tried.append(f"data.{split}={path}")
    keys = " / ".join(f"data.{s}" for s in splits)
    found = f"{', '.join(tried)} not found" if tried else "not set"
    raise FileNotFoundError(f"no manifest for {purpose}: the recipe's {keys} ({found}); give {option}")


def _example_files(recipe: Mapping[str, Any], audio: str | None, video: str | None) -> dict[str, Any]:
    if audio or video:
        return {"audio": audio, "video": video}
    from avtoolkit.datasets.manifest.reader import read_manifest

    path = recipe_manifest(recipe, ("test", "val", "train"), "the ONNX Runtime check on a real example",
                           "--audio/--video files")
    utt = read_manifest(path, skip_bad_lines=True).utterances[0]
    return {"audio": utt.audio, "video": utt.video}


def export_checkpoint(checkpoint: str | os.PathLike[str], output: str | os.PathLike[str],
                      audio: str | None = None, video: str | None = None, atol: float = 1e-4) -> dict[str, Any]:
    """Exports a trained CTC checkpoint to ONNX and verifies it on a real example.

    Args:
        checkpoint: a run's ``best.ckpt``.
        output: the ``.onnx`` file to write.
        audio: example audio file (default: the first utterance of the recipe's test manifest).
        video: example video file (same default).
        atol: the largest allowed log-probability difference.

    Returns:
        ``{"output", "max_abs_diff", "example", "modalities"}``.

    Raises:
        FileNotFoundError: no example can be found.
        ExportError: ONNX Runtime does not reproduce PyTorch within ``atol``.
    """
    from avtoolkit.inference.transcriber import Transcriber

    asr = Transcriber.from_checkpoint(checkpoint)
    files = _example_files(asr.recipe, audio, video)
    batch, used = asr._batch([{m: files.get(m) for m in asr.modalities}])
    missing = [m for m in asr.modalities if m not in used]
    if missing:
        raise FileNotFoundError(f"the export example needs {missing} as well (the model reads {asr.modalities})")
    diff = export_onnx(asr.model, batch, output, asr.vocabulary, recipe=asr.recipe, atol=atol)
    return {"output": str(output), "max_abs_diff": diff, "modalities": used,
            "example": {m: str(files[m]) for m in used}}
