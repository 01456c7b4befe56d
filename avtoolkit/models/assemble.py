"""Assembles a model from the ``model`` section of a recipe.

The assembler builds encoders first, reads each part's reported ``output_dim`` and
``output_rate``, and passes them to the next part's constructor (``input_dim``,
``input_dims``, ``input_rates``). Constructor exceptions propagate unchanged, with a
note naming the recipe path that was being built.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from avtoolkit.models.contract import Backend, Encoder, Fusion, Head
from avtoolkit.registry import registry_for


def _build(kind: str, spec: Mapping[str, Any], path: str, **injected: Any) -> Any:
    args = {k: v for k, v in spec.items() if k != "name"}
    cls = registry_for(kind).get(spec["name"])
    params = inspect.signature(cls).parameters
    for key, value in injected.items():
        if key in params:
            args[key] = value
    try:
        return cls(**args)
    except Exception as exc:
        exc.add_note(f"while building {kind} '{spec['name']}' at recipe key '{path}'")
        raise


class AVModel(nn.Module):
    """A recipe model: ``encoders -> [fusion] -> backends -> head``.

    ``forward`` takes a batch dict: for each encoder's modality the input tensor under
    ``"video"`` / ``"audio"`` and its valid frame counts under ``"video_lengths"`` /
    ``"audio_lengths"`` (defaulting to full length); extra keys (``"word_boundary"``) go to
    the head. It returns the head's dict (``log_probs``, and ``lengths`` for CTC).
    """

    def __init__(self, encoders: Mapping[str, Encoder], fusion: Fusion | None,
                 backends: list[Backend], head: Head) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(dict(encoders))
        self.fusion = fusion
        self.backends = nn.ModuleList(backends)
        self.head = head

    @property
    def task(self) -> str:
        """``"classification"`` or ``"ctc"``, from the head."""
        return self.head.task

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders.keys())

    def encode(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Encoders and fusion: the fused sequence and its lengths."""
        streams: dict[str, tuple[Tensor, Tensor]] = {}
        for modality, encoder in self.encoders.items():
            x = batch.get(modality)
            if x is None:
                continue
            lengths = batch.get(f"{modality}_lengths")
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
            streams[modality] = encoder(x, lengths)
        if not streams:
            raise ValueError(
                f"the batch has none of this model's inputs {self.modalities}; keys were {sorted(batch)}"
            )
        if self.fusion is not None:
            return self.fusion(streams)
        return next(iter(streams.values()))

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        x, lengths = self.encode(batch)
        for backend in self.backends:
            x, lengths = backend(x, lengths)
        return self.head(x, lengths, batch)


def assemble(model_cfg: Mapping[str, Any]) -> AVModel:
    """Builds an :class:`AVModel` from a validated ``model`` recipe section."""
    encoders: dict[str, Encoder] = {}
    for modality, spec in model_cfg["encoders"].items():
        encoders[modality] = _build("encoder", spec, f"model.encoders.{modality}")
    fusion: Fusion | None = None
    if model_cfg.get("fusion") is not None:
        fusion = _build(
            "fusion", model_cfg["fusion"], "model.fusion",
            input_dims={m: e.output_dim for m, e in encoders.items()},
            input_rates={m: e.output_rate for m, e in encoders.items()},
        )
        dim = fusion.output_dim
    elif len(encoders) > 1:
        raise ValueError(f"model.fusion: {len(encoders)} encoders ({', '.join(encoders)}) need a fusion")
    else:
        dim = next(iter(encoders.values())).output_dim
    backends: list[Backend] = []
    for i, spec in enumerate(model_cfg.get("backends") or []):
        backend = _build("backend", spec, f"model.backends.{i}", input_dim=dim)
        backends.append(backend)
        dim = backend.output_dim
    head = _build("head", model_cfg["head"], "model.head", input_dim=dim)
    return AVModel(encoders, fusion, backends, head)
