"""``run_demo``: generate the demo corpus, train and test both demo recipes, write a report.

The report folder (``out_dir/report``) holds ``lrw_curves.png`` and ``avasr_curves.png``
(learning curves from each run's ``metrics.csv``), ``wer_vs_snr.png``, ``results.json``
and ``report.md``; the runs themselves are in ``out_dir/runs``, the AV-ASR model's ONNX
files (fp32 and int8) in ``out_dir/export``.
"""

from __future__ import annotations

from avtoolkit.errors import AvtoolkitError

import contextlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

#: The demo's targets on its test split (issue: the main job).
TARGETS = {"lrw_top1": 0.90, "avasr_clean_cer": 0.10, "av_over_audio_wer_at_0db": 0.5}
#: SNRs of the demo's robustness curve (dB; ``None`` is clean audio), in the recipe's own noise type.
NOISE_SNRS: tuple[float | None, ...] = (None, 10.0, 5.0, 0.0, -5.0)
#: The phases of the job, in order, as named in the table and ``results["phase_seconds"]``.
PHASES = ("corpus", "lrw", "avasr", "noise", "export")
_PHASE_TITLES = {"corpus": "generate the corpus", "lrw": "train + test demo_lrw",
                 "avasr": "train + test demo_avasr", "noise": "WER against SNR (11 tests)",
                 "export": "ONNX export + int8"}


class DemoStepError(AvtoolkitError, RuntimeError):
    """A step of the demo produced no usable result (e.g. a run without a test metric)."""


def demo_recipe(name: str) -> Path:
    """The path of the demo recipe ``name`` (``demo_lrw``, ``demo_avasr``): the one place the job looks.

    Examples:
        >>> demo_recipe("demo_lrw").name
        'demo_lrw.yaml'
    """
    from avtoolkit.recipe.shipped import shipped_dir

    return shipped_dir() / f"{name}.yaml"


@contextlib.contextmanager
def _phase(number: int, name: str, seconds: dict[str, float], where: Path) -> Iterator[None]:
    """Prints the step, times it, and names it (and where its logs are) if it fails."""
    print(f"[{number}/{len(PHASES)}] {_PHASE_TITLES[name]}", flush=True)
    started = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        exc.add_note(f"avtoolkit demo: step {number}/{len(PHASES)} ({_PHASE_TITLES[name]}) failed after "
                     f"{time.perf_counter() - started:.0f} s; its files are in {where}")
        raise
    seconds[name] = round(time.perf_counter() - started, 1)
    print(f"[{number}/{len(PHASES)}] {_PHASE_TITLES[name]}: done in {seconds[name]:.0f} s", flush=True)


def _curves_png(run_dir: Path, out: Path) -> Path | None:
    from avtoolkit.engine.rundir import plot_curves

    made = plot_curves(run_dir / "metrics.csv", out)
    return Path(made) if made else None


def _metric(metrics: dict[str, float], key: str, run_dir: Path) -> float:
    value = metrics.get(key)
    if value is None or not math.isfinite(value):
        raise DemoStepError(f"{run_dir}: the run finished without a finite '{key}' (got {value}); "
                            f"see {run_dir / 'training.log'}")
    return float(value)


def target_rows(results: dict) -> list[tuple[str, float, str, bool | None]]:
    """``(figure, value, target, met)`` for each figure of the table; ``met`` is ``None`` when untargeted."""
    t = TARGETS
    lrw_top1, cer, wer = results["lrw"]["top1"], results["avasr"]["clean_cer"], results["avasr"]["clean_wer"]
    rows: list[tuple[str, float, str, bool | None]] = [
        ("LRW demo top-1 (test)", lrw_top1, f">= {t['lrw_top1']:.0%}", lrw_top1 >= t["lrw_top1"]),
        ("AV-ASR clean CER (test, AV)", cer, f"<= {t['avasr_clean_cer']:.0%}", cer <= t["avasr_clean_cer"]),
        ("AV-ASR clean WER (test, AV)", wer, "", None),
    ]
    n = results["noise"]
    av0, ao0 = n["audio-visual"].get("0", {}).get("wer"), n["audio-only"].get("0", {}).get("wer")
    if av0 is not None and ao0 is not None:
        rows.append(("WER at 0 dB, audio-only", ao0, "", None))
        rows.append(("WER at 0 dB, audio-visual", av0, "", None))
        ratio = av0 / ao0 if ao0 > 0 else (0.0 if av0 == 0 else math.inf)
        limit = t["av_over_audio_wer_at_0db"]
        rows.append(("AV / audio-only WER at 0 dB", ratio, f"<= {limit:.2f}", ratio <= limit))
    rows.append(("WER video-only", n["video-only"]["clean"]["wer"], "", None))
    if "export" in results:  # what deployment costs: the same test sentences through ONNX Runtime
        e = results["export"]
        rows.append(("WER ONNX fp32 (test, AV)", e["fp32"]["wer"], "", None))
        rows.append(("WER ONNX int8 (test, AV)", e["int8"]["wer"], "", None))
        rows.append(("int8 / fp32 ONNX latency", e["int8"]["latency_ms"] / e["fp32"]["latency_ms"], "", None))
    return rows


def results_table(results: dict) -> str:
    """The one table the demo prints: each figure, its target, met or MISSED, then phase times."""
    w = 2 + max(len(title) for title in _PHASE_TITLES.values()) + len("time: ")  # widest first column
    lines = [f"{'figure':<{w}} {'value':>8}  {'target':<8}  result", "-" * (w + 28)]
    for name, value, target, ok in target_rows(results):
        shown = f"{value:.3f}" if "/" in name else f"{100 * value:7.1f}%"
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        lines.append(f"{name:<{w}} {shown:>8}  {target:<8}  {verdict}")
    lines.append("-" * (w + 28))
    for phase in PHASES:
        if phase in results.get("phase_seconds", {}):
            lines.append(f"{'time: ' + _PHASE_TITLES[phase]:<{w}} {results['phase_seconds'][phase]:>7.0f}s")
    lines.append(f"{'time: total':<{w}} {results['seconds']:>7.0f}s")
    return "\n".join(lines)


def _report_md(results: dict, table: str) -> str:
    missed = [name for name, _, _, ok in target_rows(results) if ok is False]
    verdict = ("All three targets are met." if not missed else
               "MISSED: " + "; ".join(missed) + ". The figures are reported as measured.")
    return f"""# avtoolkit demo report

Synthetic corpus (`{results['corpus']['size']}`, seed {results['corpus']['seed']}): formant-synthesised
speech and rendered faces, test speakers never seen in training (see docs/demo.md). Everything
below was trained and measured by `avtoolkit demo` in {results['seconds'] / 60:.1f} minutes
({results['machine']}). {verdict}

```
{table}
```

## LRW-layout word recognition (lipreading, video only): `recipes/demo_lrw.yaml`

Test top-1 {100 * results['lrw']['top1']:.1f}% over {len(results['lrw']['vocabulary'])} words
({', '.join(results['lrw']['vocabulary'])}).

![LRW learning curves](lrw_curves.png)

## AV-ASR sentences (audio + video, CTC): `recipes/demo_avasr.yaml`

![AV-ASR learning curves](avasr_curves.png)

## Word error rate against noise

One model trained with modality dropout, tested with audio only, video only, and both, while
{results['noise_kind']} noise is added to the test audio. Video-only does not hear the noise (a flat line);
audio-only climbs as the SNR falls; audio-visual should stay close to the better of the two.

![WER against SNR](wer_vs_snr.png)

| input | {' | '.join(results['noise']['audio-only'])} |
|---|{'---|' * len(results['noise']['audio-only'])}
""" + "".join(
        f"| {name} | " + " | ".join(f"{100 * row['wer']:.1f}%" for row in rows.values()) + " |\n"
        for name, rows in results["noise"].items()
    ) + ("" if "export" not in results else _export_md(results["export"]))


def _export_md(export: dict) -> str:
    fp32, int8 = export["fp32"], export["int8"]
    return f"""
## Deployment: ONNX and int8

The AV-ASR checkpoint exported to `{export['files']['fp32']}` (checked against PyTorch) and its
static int8 twin `{export['files']['int8']}` (calibrated on {export['calibration']['utterances']} training
sentences), both transcribing the {export['utterances']} test sentences with ONNX Runtime:

| graph | WER | CER | ms per utterance |
|---|---|---|---|
| fp32 | {100 * fp32['wer']:.2f}% | {100 * fp32['cer']:.2f}% | {fp32['latency_ms']:.1f} |
| int8 | {100 * int8['wer']:.2f}% | {100 * int8['cer']:.2f}% | {int8['latency_ms']:.1f} |
"""


def _export(checkpoint: Path, out: Path) -> dict:
    """``avtoolkit export --int8`` on the demo model, scored on the whole test split."""
    from avtoolkit.inference.deploy import export_checkpoint, quantize_export
    from avtoolkit.inference.quantize import int8_path

    fp32 = export_checkpoint(checkpoint, out / "demo_avasr.onnx")["output"]
    report = quantize_export(fp32, int8_path(fp32), eval_size=None)
    report["files"] = {"fp32": str(fp32), "int8": report.pop("output")}
    return report


def _noise_kind(recipe: Path, overrides: list[str]) -> str:
    """The recipe's ``data.noise_type`` (``white`` when unset): the noise the demo tests under."""
    from avtoolkit.recipe import load_recipe

    return str((load_recipe(recipe, overrides).get("data") or {}).get("noise_type") or "white")


def _machine() -> str:
    import platform

    import torch

    return f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} with {torch.get_num_threads()} threads"


def run_demo(out_dir: str | os.PathLike[str] = "demo_output", size: str = "small", seed: int = 0,
             overrides: dict[str, list[str]] | None = None) -> dict:
    """The main job: corpus, two trainings, noise curves, ONNX + int8 export, plots, report.

    A step that fails stops the job with its own exception, with a note naming the step
    and where its files are; a target that is not reached is not an error, it is reported
    as ``MISSED`` in the table and ``report.md``.

    Args:
        out_dir: everything goes here (``corpus/``, ``runs/``, ``export/``, ``report/``).
        size: demo corpus size (``tiny``, ``small``, ``medium``).
        seed: corpus seed.
        overrides: extra recipe overrides per run, ``{"lrw": [...], "avasr": [...]}``
            (e.g. ``trainer.max_epochs=1`` for a smoke test).

    Returns:
        The results (also in ``report/results.json``) with the table under ``"table"`` and
        wall seconds per step under ``"phase_seconds"``.

    Raises:
        DemoStepError: a run finished without its test metric.
        ValueError: an unknown ``size``.
    """
    from avtoolkit.demo.corpus import SIZES, generate_corpus
    from avtoolkit.engine.noise_eval import INPUTS, noise_eval, plot_wer_vs_snr
    from avtoolkit.engine.run import run_recipe

    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    started = time.perf_counter()
    out = Path(out_dir)
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    seconds: dict[str, float] = {}
    corpus = out / "corpus"
    with _phase(1, "corpus", seconds, corpus):
        summary = generate_corpus(corpus, size=size, seed=seed, progress=True)

    lrw_dir = out / "runs" / "demo_lrw"
    with _phase(2, "lrw", seconds, lrw_dir):
        shutil.rmtree(lrw_dir, ignore_errors=True)
        lrw = run_recipe(demo_recipe("demo_lrw"), [f"data.root={corpus / 'lrw'}", *overrides.get("lrw", [])],
                         lrw_dir)
        lrw_top1 = _metric(lrw, "test/acc", lrw_dir)

    sentences = corpus / "sentences"
    av_over = [f"data.{s}={sentences / f'{s}.txt'}" for s in ("train", "val", "test")]
    av_over += overrides.get("avasr", [])
    av_dir = out / "runs" / "demo_avasr"
    av_recipe = demo_recipe("demo_avasr")
    with _phase(3, "avasr", seconds, av_dir):
        shutil.rmtree(av_dir, ignore_errors=True)
        av = run_recipe(av_recipe, av_over, av_dir)
        _metric(av, "test/wer", av_dir)

    with _phase(4, "noise", seconds, report):
        # `avtoolkit noise-eval` on the demo model: its own noise type and decoder, the three inputs.
        kind = _noise_kind(av_recipe, av_over)
        noise = noise_eval(av_dir / "checkpoints" / "best.ckpt", av_recipe, av_over, inputs=list(INPUTS),
                           noises=[kind], snrs=NOISE_SNRS)
        curves = noise.curves(kind)
        _curves_png(lrw_dir, report / "lrw_curves.png")
        _curves_png(av_dir, report / "avasr_curves.png")
        plot_wer_vs_snr(noise, report / "wer_vs_snr.png", title="AV-ASR demo: one model, three inputs")

    export_dir = out / "export"
    with _phase(5, "export", seconds, export_dir):
        export = _export(av_dir / "checkpoints" / "best.ckpt", export_dir)

    clean = curves["audio-visual"]["clean"]
    results = {
        "corpus": {"size": size, "seed": seed, "counts": summary["counts"], "seconds": summary["seconds"]},
        "lrw": {"top1": lrw_top1, "vocabulary": summary["lrw_words"], "metrics": lrw},
        "avasr": {"clean_wer": clean["wer"], "clean_cer": clean["cer"], "metrics": av},
        "noise": curves,
        "noise_kind": kind,
        "export": export,
        "targets": TARGETS,
        "phase_seconds": seconds,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": _machine(),
    }
    table = results_table(results)
    results["table"] = table
    results["missed"] = [name for name, _, _, ok in target_rows(results) if ok is False]
    (report / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    (report / "report.md").write_text(_report_md(results, table), encoding="utf-8")
    print(f"\n{table}\n\nreport: {report / 'report.md'}", flush=True)
    return results
