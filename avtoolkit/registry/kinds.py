"""The registries avtoolkit uses, one per kind: entry-point group and built-in locations.

Each registry fills itself on first use (see :class:`Registry`), kind by kind, so that
validating a model section does not import the datasets and Lightning.
"""

from __future__ import annotations

from typing import Any

from avtoolkit.registry.registry import Registry, RegistryError

#: what ``batch["audio"]`` holds, as an audio encoder declares it (``Encoder.audio_input``):
#: ``log_mel`` frames ``[T, 40]`` at 100 per second, or the ``waveform`` ``[S]`` at 16 kHz,
#: normalised per utterance (:mod:`avtoolkit.data.audio_input` makes both). Defined here, torch-free,
#: because the encoder check below and recipe validation read it.
AUDIO_INPUTS = ("log_mel", "waveform")


def _reads_one_modality(encoder: Any) -> None:
    """An encoder names the batch key it reads, and an audio encoder the form of its input;
    a silent default would feed an audio encoder video, or a waveform encoder log-mel."""
    modality = getattr(encoder, "modality", None)
    name = getattr(encoder, "__qualname__", repr(encoder))
    if not isinstance(modality, str) or not modality:
        raise RegistryError(f"encoder {name} does not set the class attribute `modality` "
                            f"(the batch key it reads: 'video' or 'audio'), got {modality!r}")
    audio_input = getattr(encoder, "audio_input", "log_mel")
    if modality == "audio" and audio_input not in AUDIO_INPUTS:
        raise RegistryError(f"audio encoder {name} sets `audio_input` = {audio_input!r}; "
                            f"it must be one of {', '.join(AUDIO_INPUTS)}")


ENCODERS = Registry("encoder", group="avtoolkit.encoders", locations=["avtoolkit.models.encoders"],
                    check=_reads_one_modality)
FUSIONS = Registry("fusion", group="avtoolkit.fusions", locations=["avtoolkit.models.fusion"])
BACKENDS = Registry("backend", group="avtoolkit.backends", locations=["avtoolkit.models.backends"])
HEADS = Registry("head", group="avtoolkit.heads", locations=["avtoolkit.models.heads"])
DATASETS = Registry("dataset", group="avtoolkit.datasets", locations=["avtoolkit.datasets"])


def _has_a_monitor(objective: Any) -> None:
    """An objective names the metric its runs monitor by default; without one no best
    checkpoint could be chosen."""
    monitor = getattr(objective, "monitor", None)
    if not (isinstance(monitor, tuple) and len(monitor) == 2 and isinstance(monitor[0], str)
            and monitor[1] in ("min", "max")):
        name = getattr(objective, "__qualname__", repr(objective))
        raise RegistryError(f"objective {name} does not set the class attribute `monitor` (the default metric and "
                            f"mode, e.g. ('val/acc', 'max')), got {monitor!r}")


OBJECTIVES = Registry("objective", group="avtoolkit.objectives", locations=["avtoolkit.objectives"],
                      check=_has_a_monitor)

KINDS: dict[str, Registry] = {
    "encoder": ENCODERS,
    "fusion": FUSIONS,
    "backend": BACKENDS,
    "head": HEADS,
    "dataset": DATASETS,
    "objective": OBJECTIVES,
}


def registry_for(kind: str) -> Registry:
    """The registry of ``kind`` (it loads its components and plugins on first use).

    Raises:
        RegistryError: unknown kind.
    """
    if kind not in KINDS:
        raise RegistryError(f"unknown component kind '{kind}'; kinds are: {', '.join(KINDS)}")
    return KINDS[kind]
