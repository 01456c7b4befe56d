"""Runs an exported CTC graph with ONNX Runtime, taking and returning the model's batch dicts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from avtoolkit.inference.export import META_KEY, OnnxInfo, fill_missing, pad_to_common_frames


class OnnxModel:
    """An exported AV-ASR graph behind the ``model(batch) -> {"log_probs", "lengths"}`` call.

    A modality missing from the batch is fed as a zero-length stream; streams are padded
    to a common number of fused frames. Both leave the result unchanged.

    Args:
        path: an ``.onnx`` file written by :func:`avtoolkit.inference.export.export_onnx`.
        threads: ONNX Runtime intra-op threads.

    Raises:
        ValueError: the file has no avtoolkit metadata (not exported by avtoolkit).
    """

    task = "ctc"

    def __init__(self, path: str | os.PathLike[str], threads: int = 2) -> None:
        from avtoolkit.inference.fast import ort_session

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        self.session = ort_session(self.path, threads=threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise ValueError(f"{self.path}: no '{META_KEY}' metadata; export it with `avtoolkit export`")
        self.info = OnnxInfo.from_json(meta[META_KEY])
        self.modalities = list(self.info.modalities)
        self._shapes = {i.name: i.shape for i in self.session.get_inputs()}

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
        return feeds

    def __call__(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        log_probs, lengths = self.session.run(["log_probs", "lengths"], self.feeds(batch))
        return {"log_probs": torch.from_numpy(log_probs), "lengths": torch.from_numpy(lengths).long()}
