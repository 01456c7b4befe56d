"""ONNX Runtime: the CPU session, the graph's metadata and :class:`OnnxModel`, which runs a graph
exported by :func:`avtoolkit.inference.export.export_onnx` on the model's batch dicts.

The bottom layer of :mod:`avtoolkit.inference`: it imports nothing else from the package.

A graph exported by avtoolkit takes ``audio [B, T_a, 40]``, ``audio_lengths [B]``,
``video [B, T_v, 1, H, W]``, ``video_lengths [B]`` (only the modalities the model has, plus
any other batch key the model reads, such as ``word_boundary``) with dynamic batch and time
axes, and returns ``log_probs`` (and ``lengths`` for CTC models). A modality is left out at
run time by giving it length 0 (the fusions treat that exactly like an absent stream, see
:mod:`avtoolkit.models.fusion._streams`). The streams must cover the same number of fused
frames: :func:`pad_to_common_frames` pads the inputs (padding is masked, so the result does
not change).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from avtoolkit.errors import CheckpointError

#: metadata key holding :class:`OnnxInfo` as JSON.
META_KEY = "avtoolkit"


@dataclass
class OnnxInfo:
    """What a runner needs besides the graph (stored in the ONNX metadata)."""

    vocabulary: list[str]
    modalities: list[str]
    strides: dict[str, float]  # input frames per fused frame, per modality
    recipe: dict[str, Any]
    task: str = "ctc"  # files written before classification export existed are CTC graphs
    note: str = ""  # what the graph leaves out (the objective's export_note): a hybrid's attention decoder

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> "OnnxInfo":
        return cls(**json.loads(text))


def ort_session(path: str | os.PathLike[str], threads: int = 2) -> Any:
    """An ONNX Runtime CPU session with ``threads`` intra-op threads and full graph optimisation.

    One inter-op thread and sequential execution: the models here are chains, and a second
    pool would only compete with the first for the same cores.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


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


class OnnxModel:
    """An exported avtoolkit graph behind the ``model(batch) -> {"log_probs", ...}`` call.

    A modality missing from the batch is fed as a zero-length stream; streams are padded
    to a common number of fused frames. Both leave the result unchanged. CTC graphs also
    return ``lengths``.

    Args:
        path: an ``.onnx`` file written by :func:`avtoolkit.inference.export.export_onnx`.
        threads: ONNX Runtime intra-op threads.

    Raises:
        CheckpointError: not an ONNX model, or one without avtoolkit metadata (not exported by avtoolkit).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 2) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        try:
            self.session = ort_session(self.path, threads=threads)
        except Exception as exc:  # onnxruntime's own kinds (InvalidProtobuf, Fail) share no base but Exception
            raise CheckpointError(f"{self.path}: not a readable ONNX model ({str(exc).strip()[:160]}); give a file "
                                  "written by `avtoolkit export`, or a run's best.ckpt") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise CheckpointError(f"{self.path}: no '{META_KEY}' metadata; export it with `avtoolkit export`")
        self.info = OnnxInfo.from_json(meta[META_KEY])
        self.task = self.info.task
        self.modalities = list(self.info.modalities)
        self._shapes = {i.name: i.shape for i in self.session.get_inputs()}
        streams = {n for m in self.modalities for n in (m, f"{m}_lengths")}
        #: other batch keys the graph reads (``word_boundary``), fed as they are
        self.extra_inputs = [n for n in self._shapes if n not in streams]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def _example_shape(self, modality: str) -> tuple[int, ...]:
        # Trailing dims of the graph input; symbolic ones only occur on batch/time axes.
        return tuple(int(d) for d in self._shapes[modality][2:])

    def feeds(self, batch: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
        """The graph's inputs for a model batch: lengths filled in, streams padded, absent ones stood in for.

        Calling the model runs the session on these; int8 calibration
        (:mod:`avtoolkit.inference.quantize`) feeds the same arrays.
        """
        batch = {k: v for k, v in batch.items() if isinstance(v, Tensor)}
        ref = next(batch[m] for m in self.modalities if m in batch)
        for m in self.modalities:
            if m in batch and f"{m}_lengths" not in batch:
                batch[f"{m}_lengths"] = torch.full((ref.shape[0],), batch[m].shape[1], dtype=torch.long)
        batch = pad_to_common_frames(batch, self.info.strides)
        batch = fill_missing(batch, self.modalities, {m: self._example_shape(m) for m in self.modalities},
                             self.info.strides)
        feeds = {}
        for m in self.modalities:
            feeds[m] = np.ascontiguousarray(batch[m].detach().cpu().numpy(), dtype=np.float32)
            feeds[f"{m}_lengths"] = batch[f"{m}_lengths"].detach().cpu().numpy().astype(np.int64)
        for name in self.extra_inputs:
            if name not in batch:
                raise KeyError(f"{self.path} also reads '{name}', which the batch lacks")
            feeds[name] = np.ascontiguousarray(batch[name].detach().cpu().numpy(), dtype=np.float32)
        return feeds

    def __call__(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        results = self.session.run(self.outputs, self.feeds(batch))
        out = {name: torch.from_numpy(value) for name, value in zip(self.outputs, results)}
        if "lengths" in out:
            out["lengths"] = out["lengths"].long()
        return out
