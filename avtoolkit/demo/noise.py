"""Word error rate against SNR for one AV-ASR checkpoint fed audio, video, or both."""

from __future__ import annotations

import os
from pathlib import Path

#: SNRs of the robustness curve; ``None`` is clean audio.
SNRS: tuple[float | None, ...] = (None, 10.0, 5.0, 0.0, -5.0)
#: The noise the demo adds to the test audio: the recipe's ``data.noise_type``, read from it.
INPUTS: dict[str, list[str]] = {"audio-only": ["audio"], "video-only": ["video"], "audio-visual": ["audio", "video"]}


def noise_curves(
    recipe: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    overrides: list[str] | None = None,
    snrs: tuple[float | None, ...] = SNRS,
) -> dict[str, dict[str, dict[str, float]]]:
    """Test WER and CER of one checkpoint at each SNR, for each input combination.

    Noise of the recipe's ``data.noise_type`` (white, or babble from other test utterances)
    is added to the test audio at each SNR (the dataset's ``test_noise_snr_db``); the same
    noise every run. Video-only does not hear the audio,
    so it is evaluated once and repeated across SNRs.

    Args:
        recipe: the AV-ASR recipe (data and decoding settings).
        checkpoint: a checkpoint trained with modality dropout (so either input alone works).
        overrides: recipe overrides (manifest paths ...).
        snrs: SNRs in dB, ``None`` for clean.

    Returns:
        ``{inputs: {snr label: {"wer": ..., "cer": ...}}}`` with labels ``clean``, ``10`` ...
    """
    from avtoolkit.engine.evaluate import evaluate

    curves: dict[str, dict[str, dict[str, float]]] = {}
    for name, modalities in INPUTS.items():
        curves[name] = {}
        video_only: dict[str, float] | None = None
        for snr in snrs:
            label = "clean" if snr is None else f"{snr:g}"
            if name == "video-only" and video_only is not None:
                curves[name][label] = video_only
                continue
            extra = [f"data.modalities=[{', '.join(modalities)}]"]
            if snr is not None and "audio" in modalities:
                extra.append(f"data.test_noise_snr_db={snr}")
            metrics = evaluate(recipe, checkpoint, "test", overrides=[*(overrides or []), *extra])
            row = {"wer": float(metrics["test/wer"]), "cer": float(metrics["test/cer"])}
            curves[name][label] = row
            if name == "video-only":
                video_only = row
    return curves


def noise_kind(recipe: str | os.PathLike[str], overrides: list[str] | None = None) -> str:
    """The recipe's ``data.noise_type`` (``white`` when unset)."""
    from avtoolkit.recipe import load_recipe

    return str((load_recipe(recipe, overrides).get("data") or {}).get("noise_type") or "white")


def plot_noise_curves(curves: dict[str, dict[str, dict[str, float]]], out: Path, kind: str = "white") -> Path:
    """PNG of WER (%) against SNR, one line per input combination."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, rows), marker in zip(curves.items(), "osd"):
        labels = list(rows)
        ax.plot(range(len(labels)), [100 * rows[k]["wer"] for k in labels], marker=marker, label=name)
    ax.set_xticks(range(len(labels)), [k if k == "clean" else f"{k} dB" for k in labels])
    ax.set_xlabel(f"SNR of {kind} noise added to the test audio")
    ax.set_ylabel("WER (%)")
    ax.set_title("AV-ASR demo: one model, three inputs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
