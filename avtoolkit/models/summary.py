"""Parameters and multiply-accumulates (MACs) per component of a recipe's model.

MACs are counted by :func:`count_macs` (:class:`torch.utils.flop_counter.FlopCounterMode`)
on one forward pass of a dummy clip (convolutions, matrix products, attention; element-wise
operations are not counted, as in the papers' tables); one MAC is two FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


@dataclass
class ComponentRow:
    """One line of a summary: a recipe key, its component, parameters and MACs."""

    path: str
    name: str
    params: int
    macs: int


@dataclass
class ModelSummary:
    """Per-component rows plus the inputs they were measured with."""

    rows: list[ComponentRow]
    inputs: dict[str, tuple[int, ...]]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def table(self) -> str:
        """A plain-text table (millions of parameters, giga-MACs)."""
        shapes = ", ".join(f"{k} {list(v)}" for k, v in self.inputs.items())
        lines = [f"inputs: {shapes}", f"{'component':<24} {'name':<18} {'params (M)':>11} {'GMACs':>9}"]
        for r in self.rows + [ComponentRow("total", "", self.params, self.macs)]:
            lines.append(f"{r.path:<24} {r.name:<18} {r.params / 1e6:>11.3f} {r.macs / 1e9:>9.3f}")
        return "\n".join(lines)


def dummy_batch(model: nn.Module, frames: int = 29, size: int = 88, audio_frames: int = 500) -> dict[str, Tensor]:
    """One example per encoder input: ``video [1, frames, C, size, size]``, ``audio [1, audio_frames, n_mels]``,
    ``text [1, frames]`` (token ids).

    The channel count comes from the encoder's ``in_channels`` (default 1); the mel count from
    its ``n_mels`` (default 80). An audio encoder whose ``audio_input`` is ``waveform`` gets the
    same duration as 16 kHz samples, ``[1, 160 * audio_frames]``. ``word_boundary`` is included
    for heads that read it.
    """
    batch: dict[str, Tensor] = {}
    for modality, encoder in model.encoders.items():
        if modality == "video":
            channels = int(getattr(encoder, "in_channels", 1))
            batch["video"] = torch.zeros(1, frames, channels, size, size)
        elif modality == "audio" and getattr(encoder, "audio_input", "log_mel") == "waveform":
            batch["audio"] = torch.zeros(1, 160 * audio_frames)  # 100 log-mel frames per second = 16000 samples
        elif modality == "audio":
            batch["audio"] = torch.zeros(1, audio_frames, int(getattr(encoder, "n_mels", 80)))
        elif modality == "text":  # a language model: a sentence of ``frames`` tokens
            batch["text"] = torch.zeros(1, frames, dtype=torch.long)
        else:
            raise ValueError(f"summary does not know how to make a dummy '{modality}' input")
    batch["word_boundary"] = torch.ones(1, frames)
    return batch


def model_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The components of an assembled model by recipe path: each encoder, the fusion, each backend, the head."""
    parts: dict[str, nn.Module] = {f"encoders.{m}": e for m, e in model.encoders.items()}
    if model.fusion is not None:
        parts["fusion"] = model.fusion
    parts.update({f"backends.{i}": b for i, b in enumerate(model.backends)})
    parts["head"] = model.head
    return parts


def count_macs(model: nn.Module, batch: dict[str, Tensor]) -> dict[str, int]:
    """Multiply-accumulates of one forward pass over ``batch``, per component (see :func:`model_parts`).

    The one MAC counter of avtoolkit (``avtoolkit summary`` and ``make bench`` both use it):
    :class:`torch.utils.flop_counter.FlopCounterMode` counts convolutions, matrix products
    and attention, also functional calls that module hooks would miss; element-wise
    operations are not counted. One MAC is two FLOPs. The model runs in evaluation mode
    with gradients on: under ``no_grad`` ``nn.TransformerEncoderLayer`` takes a fused fast
    path that the counter cannot see (it would report a Transformer backend as 0 MACs).

    Args:
        model: an assembled :class:`~avtoolkit.models.AVModel` (left in the mode it was in).
        batch: the inputs of one forward pass; a batch of one gives MACs per clip.

    Returns:
        ``{"encoders.video": macs, ..., "head": macs}``.

    Examples:
        >>> from avtoolkit.models.assemble import assemble
        >>> model = assemble({"encoders": {"audio": {"name": "audio_cnn", "channels": [4, 4, 4],
        ...     "hidden_dim": 8}}, "head": {"name": "ctc"}})
        >>> macs = count_macs(model, {"audio": torch.zeros(1, 100, 40)})
        >>> sorted(macs), macs["head"] == 25 * 8 * model.head.proj.out_features  # 25 frames x Linear(8, V)
        (['encoders.audio', 'head'], True)
    """
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_attention(query: Any, key: Any, value: Any, *args: Any, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    # PyTorch's table lacks the CPU attention kernel, which would count Q K^T and A V as 0.
    cpu_kernels = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_attention}
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), FlopCounterMode(display=False, depth=None, custom_mapping=cpu_kernels) as counter:
            model(batch)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    return {path: int(sum(counts.get(f"{root}.{path}", {}).values()) // 2) for path in model_parts(model)}


def summarize_model(model: nn.Module, batch: dict[str, Tensor], names: dict[str, str] | None = None) -> ModelSummary:
    """Counts parameters and MACs (:func:`count_macs`) of each encoder, the fusion, each backend and the head.

    Args:
        model: an assembled :class:`~avtoolkit.models.AVModel`.
        batch: the inputs of one forward pass (see :func:`dummy_batch`).
        names: recipe path -> registered component name, shown in the table.
    """
    macs = count_macs(model, batch)
    rows = []
    for path, module in model_parts(model).items():
        rows.append(ComponentRow(f"model.{path}", (names or {}).get(f"model.{path}", type(module).__name__),
                                 sum(p.numel() for p in module.parameters()), macs[path]))
    return ModelSummary(rows, {k: tuple(v.shape) for k, v in batch.items() if k in ("video", "audio", "text")})


def summarize_recipe(recipe: Any, overrides: list[str] | None = None, frames: int | None = None, size: int = 88,
                     audio_frames: int = 500) -> ModelSummary:
    """Builds a recipe's model and summarises it for one clip (default: 29 frames of 88x88).

    Args:
        recipe: a recipe path, mapping or :class:`~avtoolkit.recipe.Recipe`.
        overrides: ``key.path=value`` strings.
        frames: video frames of the dummy clip (default: LRW's 29, or as long as the audio
            at 25 fps when the model also has an audio encoder).
        size: height and width of the dummy mouth ROIs.
        audio_frames: log-mel frames of the dummy audio (500 = 5 s at 100 per second).

    Raises:
        RecipeError: the recipe does not validate.

    Examples:
        >>> s = summarize_recipe({"model": {"encoders": {"video": {"name": "effnetv2_3d",
        ...     "width": 0.25, "depth": 0.2, "head_features": 0, "output_dim": 16}},
        ...     "head": {"name": "word_classifier", "num_classes": 10}}}, frames=4, size=32)
        >>> [r.path for r in s.rows], s.params == sum(r.params for r in s.rows), s.macs > 0
        (['model.encoders.video', 'model.head'], True, True)
    """
    from avtoolkit.models.assemble import assemble
    from avtoolkit.recipe import validate_recipe

    loaded = validate_recipe(recipe, overrides)
    model_cfg = loaded["model"]
    model = assemble(model_cfg)
    names = {f"model.encoders.{m}": s["name"] for m, s in model_cfg["encoders"].items()}
    if model_cfg.get("fusion"):
        names["model.fusion"] = model_cfg["fusion"]["name"]
    names.update({f"model.backends.{i}": s["name"] for i, s in enumerate(model_cfg.get("backends") or [])})
    names["model.head"] = model_cfg["head"]["name"]
    if frames is None:
        frames = max(1, audio_frames * 25 // 100) if "audio" in model.encoders else 29
    return summarize_model(model, dummy_batch(model, frames, size, audio_frames), names)
