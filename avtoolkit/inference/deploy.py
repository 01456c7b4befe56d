"""From a trained checkpoint to deployable ONNX files, each checked on real utterances.

:func:`export_checkpoint` writes the fp32 graph and verifies it against PyTorch on a real
example; :func:`quantize_export` writes its int8 twin and scores both graphs (``avtoolkit
export [--int8]`` runs the two). The top layer of :mod:`avtoolkit.inference`: it uses
:class:`~avtoolkit.inference.transcriber.Transcriber` to read media and to score, so nothing
below imports it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from avtoolkit.errors import UsageError
from avtoolkit.inference.export import export_onnx
from avtoolkit.inference.quantize import (
    QuantizationError,
    interleaved_median_ms,
    quantization_scheme,
    quantize_onnx_int8,
)
from avtoolkit.inference.runtime import OnnxModel
from avtoolkit.inference.transcriber import Transcriber
from avtoolkit.objectives import objective_class


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
        ``{"output", "max_abs_diff", "example", "modalities", "note"}``; ``note`` says what the graph
        leaves out (a hybrid model's attention decoder), empty when nothing.

    Raises:
        FileNotFoundError: no example can be found.
        ExportError: ONNX Runtime does not reproduce PyTorch within ``atol``.
    """
    asr = Transcriber.from_checkpoint(checkpoint)
    files = _example_files(asr.recipe, audio, video)
    batch, used = asr.batch([{m: files.get(m) for m in asr.modalities}])
    missing = [m for m in asr.modalities if m not in used]
    if missing:
        raise FileNotFoundError(f"the export example needs {missing} as well (the model reads {asr.modalities})")
    diff = export_onnx(asr.model, batch, output, asr.vocabulary, recipe=asr.recipe, atol=atol)
    return {"output": str(output), "max_abs_diff": diff, "modalities": used,
            "example": {m: str(files[m]) for m in used}, "note": objective_class(asr.model.task).export_note}


def _spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items evenly spread over ``items`` (all of them if there are fewer)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def quantize_export(fp32_onnx: str | os.PathLike[str], output: str | os.PathLike[str],
                    calibration_manifest: str | os.PathLike[str] | None = None,
                    eval_manifest: str | os.PathLike[str] | None = None,
                    calibration_size: int = 32, eval_size: int | None = 100, threads: int = 2,
                    max_cer_increase: float | None = 0.05) -> dict[str, Any]:
    """Quantises an exported CTC graph on real utterances and measures what int8 costs.

    Calibration reads ``calibration_size`` utterances spread over ``calibration_manifest``
    (training data: the recipe's ``data.train`` by default). For a model with several
    inputs trained with ``modality_dropout``, every other utterance is also fed with each
    input alone, so the ranges cover a missing stream too. The first ``eval_size``
    utterances of ``eval_manifest`` (default: the recipe's ``data.test``, else ``data.val``)
    are then transcribed by both graphs with the recipe's decoder and scored, and both
    graphs' forward pass (without decoding) is timed on the first of them, in alternating
    blocks (median of 100 calls each, see :func:`interleaved_median_ms`). Manifests are
    read with the recipe's ``data.skip_bad_lines``.

    The int8 graph has 7-bit weights (:func:`~avtoolkit.inference.quantize.quantize_onnx_int8`),
    so its integer arithmetic cannot saturate and the figures measured here hold on any x86-64
    CPU, with or without VNNI. If its CER is more than ``max_cer_increase`` above fp32's,
    the int8 file is deleted and :class:`~avtoolkit.inference.quantize.QuantizationError`
    says so (with both figures) instead of leaving a bad model behind.

    Args:
        fp32_onnx: a graph from :func:`avtoolkit.inference.export.export_onnx`.
        output: the int8 ``.onnx`` file to write.
        calibration_manifest: ``audio|video|transcript`` lines to calibrate on.
        eval_manifest: held-out lines to score both graphs on.
        calibration_size: utterances to calibrate on.
        eval_size: utterances to score on (``None``: all of them).
        threads: ONNX Runtime threads for scoring and timing.
        max_cer_increase: the largest CER increase (a fraction: 0.05 is 5 points) int8 may
            cost; ``None`` keeps any int8 graph.

    Returns:
        ``{"output", "calibration": {...}, "fp32": {"wer", "cer", "latency_ms"}, "int8": {...},
        "utterances", "eval_manifest", "scored_on_calibration_data", "scheme"}`` (``scheme``:
        the graph's quantisation metadata: format, weight range, ``reduce_range`` ...).

    Raises:
        FileNotFoundError: a manifest or a file it names is missing.
        UsageError: a size below 1.
        ManifestError: a manifest with a bad line (the message names file and line).
        QuantizationError: int8 costs more than ``max_cer_increase`` (nothing is left written).
    """
    from avtoolkit.datasets.manifest.reader import read_manifest

    for option, size in (("calibration_size", calibration_size), ("eval_size", eval_size)):
        if size is not None and size < 1:
            raise UsageError(f"{option} must be at least 1, got {size}")
    asr = Transcriber.from_onnx(fp32_onnx, threads=threads)
    runner: OnnxModel = asr.model
    data = asr.recipe.get("data") or {}
    skip_bad_lines = bool(data.get("skip_bad_lines", False))  # as training read the same manifests
    if calibration_manifest is None:
        calibration_manifest = recipe_manifest(asr.recipe, ("train", "val"), "int8 calibration", "--calibration")
    if eval_manifest is None:
        eval_manifest = recipe_manifest(asr.recipe, ("test", "val"), "int8 scoring", "--eval")
    utterances = _spread(read_manifest(calibration_manifest, modalities=asr.modalities,
                                       skip_bad_lines=skip_bad_lines).utterances, calibration_size)
    # Single-input runs only where the model was trained to work with one input missing;
    # for any other model they would only widen the ranges (and cost precision).
    fusion = (asr.recipe.get("model") or {}).get("fusion") or {}
    single_inputs = len(asr.modalities) > 1 and float(fusion.get("modality_dropout") or 0) > 0

    def feeds() -> Iterator[dict[str, np.ndarray]]:
        for i, utt in enumerate(utterances):
            batch, _ = asr.batch([{m: getattr(utt, m) for m in asr.modalities}])
            yield runner.feeds(batch)
            if single_inputs and i % 2:
                for m in asr.modalities:
                    yield runner.feeds({k: v for k, v in batch.items() if k.split("_")[0] == m})

    path = quantize_onnx_int8(fp32_onnx, output, feeds())
    report: dict[str, Any] = {"output": str(path), "calibration": {"manifest": str(calibration_manifest),
                                                                   "utterances": len(utterances),
                                                                   "single_input_runs": single_inputs}}
    int8 = Transcriber.from_onnx(path, threads=threads, decoding=asr.decoding)
    first_utt = read_manifest(eval_manifest, modalities=asr.modalities, skip_bad_lines=skip_bad_lines).utterances[0]
    first, _ = asr.batch([{m: getattr(first_utt, m) for m in asr.modalities}])
    counts = set()
    latency = interleaved_median_ms({"fp32": lambda: asr.model(first), "int8": lambda: int8.model(first)})
    for name, model in (("fp32", asr), ("int8", int8)):
        summary = model.transcribe_manifest(eval_manifest, max_utterances=eval_size, skip_bad_lines=skip_bad_lines)
        counts.add(summary["utterances"])
        report[name] = {"wer": summary["wer"], "cer": summary["cer"], "latency_ms": latency[name]}
    (report["utterances"],) = counts  # both graphs read the same lines
    report["eval_manifest"] = str(eval_manifest)
    # Scoring on the calibration data flatters int8: the ranges were fitted to those inputs.
    report["scored_on_calibration_data"] = Path(eval_manifest).resolve() == Path(calibration_manifest).resolve()
    report["scheme"] = quantization_scheme(path)
    cost = report["int8"]["cer"] - report["fp32"]["cer"]
    if max_cer_increase is not None and cost > max_cer_increase:
        path.unlink()
        raise QuantizationError(
            f"int8 is not accurate enough for this model: CER {report['int8']['cer']:.2%} vs fp32 "
            f"{report['fp32']['cer']:.2%} on {report['utterances']} utterances of {eval_manifest} "
            f"(+{100 * cost:.2f} points, the limit is {100 * max_cer_increase:.2f}); {path} was not kept. "
            "Calibrate on more (or more typical) utterances (--calibration, --calibration-size), "
            "or ship the fp32 graph")
    return report
