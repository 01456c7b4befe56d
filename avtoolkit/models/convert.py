"""Released auto_avsr checkpoints (mpc001/auto_avsr, ESPnet layout) as avtoolkit state dicts.

Their ``E2E`` model holds ``frontend`` (ResNet-18 front-end), ``proj_encoder`` (512 -> 768),
``encoder`` (Conformer), ``decoder`` (Transformer decoder) and ``ctc`` (``ctc_lo``). The
components ``auto_avsr_video`` / ``auto_avsr_audio``, ``espnet_conformer`` and ``espnet_hybrid`` use
their parameter names inside, so converting is renaming prefixes; no tensor is cut, reordered or
recomputed (``espnet_hybrid`` folds their ``<eos>`` into id 0 at run time instead).

=========================  ===========================
their key prefix           avtoolkit key prefix
=========================  ===========================
``frontend.``              ``encoders.<modality>.``
``proj_encoder.``          ``backends.0.proj.``
``encoder.``               ``backends.0.``
``decoder.``               ``head.decoder.``
``ctc.ctc_lo.``            ``head.ctc_lo.``
=========================  ===========================

Their audio-visual model (``e2e_asr_conformer_av.py`` of their earlier release; recipe
``auto_avsr_avsr``) keeps each front-end inside its Conformer encoder (``encoder.frontend``,
``encoder.embed.0`` the 512 -> 768 projection), a second encoder for the audio
(``aux_encoder``) and the fusion MLP (``fusion``); ``convert_auto_avsr(state, "audiovisual")``:

=============================  ======================================
their key prefix               avtoolkit key prefix
=============================  ======================================
``encoder.frontend.``          ``encoders.video.frontend.``
``encoder.embed.0.``           ``encoders.video.conformer.proj.``
``encoder.``                   ``encoders.video.conformer.``
``aux_encoder.frontend.``      ``encoders.audio.frontend.``
``aux_encoder.embed.0.``       ``encoders.audio.conformer.proj.``
``aux_encoder.``               ``encoders.audio.conformer.``
``fusion.``                    ``fusion.``
``decoder.``, ``ctc.ctc_lo.``  ``head.decoder.``, ``head.ctc_lo.``
=============================  ======================================

Torch only; the CLI's ``avtoolkit import-checkpoint`` writes the result for the recipe's
``init`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from avtoolkit.errors import CheckpointError
from avtoolkit.models.checkpoint import StateDiff, compare_state_dicts

#: the keys of an ESPnet-era checkpoint that hold no weight (ESPnet dropped saving ``pe`` in 0.5.3)
_IGNORED_SUFFIXES = (".pe",)


#: ``convert_auto_avsr``'s name for their audio-visual model
AUDIOVISUAL = "audiovisual"


def _prefix_map(modality: str) -> list[tuple[str, str]]:
    """Their prefix -> ours, the longest first (the first that matches wins)."""
    if modality == AUDIOVISUAL:
        streams = [(theirs + part, f"encoders.{ours}.{into}") for theirs, ours in (("encoder.", "video"),
                                                                                    ("aux_encoder.", "audio"))
                   for part, into in (("frontend.", "frontend."), ("embed.0.", "conformer.proj."), ("", "conformer."))]
        return streams + [("fusion.", "fusion."), ("decoder.", "head.decoder."), ("ctc.ctc_lo.", "head.ctc_lo.")]
    return [("frontend.", f"encoders.{modality}."), ("proj_encoder.", "backends.0.proj."),
            ("encoder.", "backends.0."), ("decoder.", "head.decoder."), ("ctc.ctc_lo.", "head.ctc_lo.")]


def auto_avsr_state(checkpoint: Mapping[str, object]) -> dict[str, Tensor]:
    """The model tensors of a loaded auto_avsr file: a plain state dict, or a Lightning one (``model.`` keys).

    Raises:
        CheckpointError: no tensors under the expected names.
    """
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError("not an auto_avsr checkpoint: 'state_dict' is not a mapping of tensors")
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if tensors and all(k.startswith("model.") for k in tensors):
        tensors = {k[len("model."):]: v for k, v in tensors.items()}
    if not any(k.startswith(("frontend.", "encoder.")) for k in tensors):
        raise CheckpointError("not an auto_avsr checkpoint: no 'frontend.' or 'encoder.' tensors "
                              f"(first keys: {', '.join(list(tensors)[:4]) or 'none'})")
    return tensors


def convert_auto_avsr(state: Mapping[str, Tensor], modality: str) -> tuple[dict[str, Tensor], list[str]]:
    """Their keys renamed to avtoolkit's for a one-modality model (``"video"`` or ``"audio"``) or their
    audio-visual one (``"audiovisual"``).

    Returns:
        ``(converted, unknown)``: the renamed tensors, and their keys under no known prefix.

    Examples:
        >>> out, unknown = convert_auto_avsr({"frontend.trunk.layer1.0.conv1.weight": torch.zeros(1),
        ...                                   "encoder.after_norm.bias": torch.zeros(1),
        ...                                   "proj_encoder.weight": torch.zeros(1), "extra": torch.zeros(1)}, "video")
        >>> sorted(out), unknown
        (['backends.0.after_norm.bias', 'backends.0.proj.weight', 'encoders.video.trunk.layer1.0.conv1.weight'], ['extra'])
        >>> out, _ = convert_auto_avsr({"aux_encoder.embed.0.weight": torch.zeros(1),
        ...                             "encoder.encoders.0.norm_ff.bias": torch.zeros(1),
        ...                             "fusion.fc1.weight": torch.zeros(1)}, "audiovisual")
        >>> sorted(out)
        ['encoders.audio.conformer.proj.weight', 'encoders.video.conformer.encoders.0.norm_ff.bias', 'fusion.fc1.weight']
    """
    if modality not in ("video", "audio", AUDIOVISUAL):
        raise ValueError(f"modality must be 'video', 'audio' or {AUDIOVISUAL!r}, got {modality!r}")
    converted: dict[str, Tensor] = {}
    unknown: list[str] = []
    for key, value in state.items():
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        for theirs, ours in _prefix_map(modality):
            if key.startswith(theirs):
                converted[ours + key[len(theirs):]] = value
                break
        else:
            unknown.append(key)
    return converted, unknown


def check_conversion(model: torch.nn.Module, converted: Mapping[str, Tensor], unknown: list[str]) -> StateDiff:
    """Missing, unexpected (including the unconverted keys, by their own names) and mis-shaped keys."""
    diff = compare_state_dicts(model.state_dict(), converted)
    diff.unexpected = sorted(diff.unexpected + [f"{k} (their name; no avtoolkit part)" for k in unknown])
    return diff


def import_auto_avsr(checkpoint: str | Path, model: torch.nn.Module, out: str | Path,
                     recipe: Mapping[str, object] | None = None, vocabulary: list[str] | None = None,
                     ) -> dict[str, object]:
    """Converts an auto_avsr file for ``model`` (a recipe's model), checks it strictly, writes ``out``.

    With ``recipe`` (its resolved tree) and ``vocabulary`` (the token list of its ``data.tokens``),
    ``out`` is an avtoolkit model checkpoint, as ``avtoolkit run`` writes them: ``eval``,
    ``transcribe`` and ``noise-eval`` read it, and a recipe's ``init`` section takes parts of it.
    Without them it is a plain state dict with avtoolkit's keys, for ``init`` only. Both load with
    ``weights_only=True``. Nothing is written unless every key and shape fits.

    Returns:
        ``{"tensors": count, "parameters": count, "modality": ...}``.

    Raises:
        FileNotFoundError: no such checkpoint.
        CheckpointError: not an auto_avsr checkpoint, or it does not fit ``model``: every
            missing, unexpected and mis-shaped key is named.
    """
    from avtoolkit.models.checkpoint import read_checkpoint, save_atomic

    modality = model_layout(model)
    state = auto_avsr_state(read_checkpoint(checkpoint))
    converted, unknown = convert_auto_avsr(state, modality)
    diff = check_conversion(model, converted, unknown)
    if not diff.clean:
        theirs = AUDIOVISUAL if any(k.startswith("aux_encoder.") for k in state) else "one-modality"
        hint = (f"; it is their {theirs} model: use the recipe auto_avsr_avsr" if theirs == AUDIOVISUAL else
                "; it is one of their one-modality models: use auto_avsr_vsr or auto_avsr_asr"
                if modality == AUDIOVISUAL else "")
        raise CheckpointError(f"{checkpoint} does not fit the recipe's model (is it the {modality} model, and "
                              f"the recipe's sizes theirs?{hint}):\n{diff.describe()}")
    if recipe is not None and vocabulary is not None:
        head_size = getattr(getattr(model, "head", None), "output_dim", None)
        if head_size != len(vocabulary):
            raise CheckpointError(f"the recipe's head has {head_size} tokens but its data.tokens give {len(vocabulary)}"
                                  " (auto_avsr's unigram-5000 needs their units file, data.tokens.units)")
        from avtoolkit.models.checkpoint import META_KEY, MODEL_PREFIX

        save_atomic({"state_dict": {MODEL_PREFIX + k: v for k, v in converted.items()},
                     META_KEY: {"recipe": dict(recipe), "vocabulary": list(vocabulary), "task": "hybrid",
                                "imported_from": str(checkpoint)}}, out)
    else:
        save_atomic(converted, out)
    params = sum(v.numel() for k, v in converted.items() if not k.endswith(("running_mean", "running_var",
                                                                           "num_batches_tracked")))
    return {"tensors": len(converted), "parameters": params, "modality": modality}


def model_layout(model: torch.nn.Module) -> str:
    """Which of their layouts a recipe's model takes: ``"video"``, ``"audio"`` or ``"audiovisual"``.

    Raises:
        CheckpointError: a model of no auto_avsr layout (no encoder, or two without a fusion).
    """
    modalities = sorted(getattr(model, "encoders", {}).keys())
    if len(modalities) == 1:
        return modalities[0]
    if modalities == ["audio", "video"] and getattr(model, "fusion", None) is not None:
        return AUDIOVISUAL
    raise CheckpointError(f"import-checkpoint reads auto_avsr's video, audio and audio-visual models; this recipe's "
                          f"model has encoders {modalities or 'none'}")
