"""The printed table and the markdown / JSON files under ``benchmarks/results/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = ("recipe", "path", "params", "GMACs/clip", "b1 median ms", "b1 p95 ms", "b16 clips/s",
          "GFLOP/s", "% own ceiling", "max |dlogp|", "kernels")
TRAIN_HEADER = ("recipe", "training path", "batch", "CPU ms per step", "clips per CPU-s", "vs today")
MEMORY_HEADER = ("recipe", "path", "batch", "peak RSS MiB", "run MiB")


def _kernels_cell(kernels: dict[str, Any] | None) -> str:
    """``onnxruntime CPUExecutionProvider, int8 QDQ ...`` (empty for results from before issue 24)."""
    if not kernels:
        return ""
    return ", ".join([kernels["engine"], kernels["format"]] + (["EMULATED here"] if kernels.get("emulated") else []))


def model_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per (recipe, inference path), plus one per training step."""
    rows: list[tuple[str, ...]] = []
    for recipe, res in results.get("models", {}).items():
        if "error" in res or "skipped" in res:
            rows.append((recipe, res.get("error") or res.get("skipped"), *[""] * (len(HEADER) - 2)))
            continue
        for path, entry in res["paths"].items():
            if "error" in entry:
                rows.append((recipe, path, "ERROR " + entry["error"][:60], *[""] * (len(HEADER) - 3)))
                continue
            lat, thr = entry["latency"], entry["throughput"]
            diff = entry.get("agreement", {}).get("max_abs_diff")
            rows.append((recipe, path, f"{res['params'] / 1e6:.2f}M", f"{res['macs_per_clip'] / 1e9:.3f}",
                         f"{lat['median_ms']:.1f}", f"{lat['p95_ms']:.1f}",
                         f"{thr['clips_per_s']:.1f}" + ("" if thr["batch"] == 16 else f" (b{thr['batch']})"),
                         f"{thr['gflops']:.1f}",
                         f"{100 * thr['ceiling_fraction']:.0f} ({thr.get('ceiling_format', 'fp32')})",
                         "" if diff is None else f"{diff:.1e}", _kernels_cell(entry.get("kernels"))))
        step = res["train_step"]
        rows.append((recipe, f"train step (b{step['batch']})", "", "", f"{step['step_ms']:.0f} per step", "",
                     f"{step['clips_per_s']:.1f}", "", "", "", ""))
    return rows


def train_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per (recipe, training path): CPU time per step and the ratio to today's step."""
    rows: list[tuple[str, ...]] = []
    for recipe, res in results.get("models", {}).items():
        for path, e in res.get("train_paths", {}).items():
            if "error" in e:
                rows.append((recipe, path, "ERROR " + e["error"][:60], "", "", ""))
            else:
                rows.append((recipe, path, str(e["batch"]), f"{e['cpu_ms_per_step']:.0f}",
                             f"{e['clips_per_cpu_s']:.2f}", f"{e['speedup']:.2f}x" if e.get("speedup") else ""))
    return rows


def memory_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per (recipe, path, batch): peak resident memory of a fresh process running it."""
    rows: list[tuple[str, ...]] = []
    for recipe, res in results.get("models", {}).items():
        for key, e in res.get("memory", {}).items():
            path, _, batch = key.rpartition(" b")
            rows.append((recipe, path, batch, *(("ERROR " + e["error"][:60], "") if "error" in e else
                                                (f"{e['peak_mib']:.0f}", f"{e['run_mib']:.0f}"))))
    return rows


def ceilings_text(results: dict[str, Any]) -> str:
    """The per-format ceilings in one line (the fp32 one alone for results from before issue 15)."""
    from benchmarks.run import ceilings_line

    per_format = results.get("ceilings") or {"fp32": results["ceiling"]}
    flags = per_format.get("cpu_flags")
    return (f"matmul ceilings (best of the start and the end of the run): {ceilings_line(per_format)}"
            + (f"; CPU flags {', '.join(flags)}" if flags else "")
            + "; `% own ceiling` reads each path against the ceiling of the format it computes in")


def data_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """``(measurement, figure)`` rows of the data section."""
    rows = []
    for name, entry in results.get("data", {}).items():
        if "error" in entry or "skipped" in entry:
            rows.append((name, entry.get("error") or entry.get("skipped")))
        elif name.startswith("prepare"):
            rows.append((name, f"{entry['clips_per_s_per_core']:.1f} clips/s per core, "
                               f"{entry['clips_per_s_wall']:.1f} wall-clock ({entry['clips']} clips)"))
        elif name == "load_prepared_rois":
            rows.append((name, f"{entry['clips_per_s_per_core']:.1f} clips/s per core, "
                               f"{entry['clips_per_s_wall']:.1f} wall-clock"))
        elif name == "train_batches":
            rows.append((name, f"{entry['clips_per_s_per_worker']:.1f} clips/s per worker at batch {entry['batch']} "
                               f"(per clip: read {entry['read_ms_per_clip']:.1f} ms, augment "
                               f"{entry['augment_ms_per_clip']:.1f} ms, collate {entry['collate_ms_per_clip']:.1f} ms)"))
        elif name == "grid_decode_crop":
            for method in ("face", "fixed"):
                rows.append((f"grid_decode_crop_{method}",
                             f"{entry[method]['clips_per_s_per_core']:.1f} clips/s per core "
                             f"({entry[method]['frames_per_s_per_core']:.0f} frames/s per core)"))
        elif name == "log_mel":
            text = f"{entry['audio_s_per_s_per_core']:.0f} s of audio per s per core"
            if "grid_audio_decode_s_per_s_per_core" in entry:
                text += f" (decoding GRID audio: {entry['grid_audio_decode_s_per_s_per_core']:.0f} s/s per core)"
            rows.append((name, text))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def _markdown(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def targets_text(results: dict[str, Any]) -> list[str]:
    """One line per target: met or missed, by how much.

    A quick run measures batch 2 instead of 16, three calls, and no bf16 or int8 path, so
    its figures are not a verdict: they are listed as ``quick`` with a pointer to the full run.
    """
    targets = results.get("targets", [])
    if results.get("meta", {}).get("mode") == "quick" and targets:
        return (["quick run: targets are judged by a full `make bench` (batch 16, 30 calls, every path); "
                 "the figures below are indicative only"]
                + [f"quick  {t['what']}: {t['measured']} (target {t['target']})" for t in targets])
    return [f"{'MET   ' if t['met'] else 'MISSED'} {t['what']}: {t['measured']} (target {t['target']})"
            for t in targets]


def _kernels_lines(meta: dict[str, Any]) -> list[str]:
    from benchmarks.models import kernels_line

    return [f"kernels: {kernels_line(meta['kernels'])}"] if meta.get("kernels") else []


def render_text(results: dict[str, Any]) -> str:
    """The table ``run.py`` prints."""
    meta = results["meta"]
    parts = [f"avtoolkit benchmark ({meta['mode']}), {meta['threads']} threads, {meta['cpu']}; "
             f"load average {meta['loadavg_start']} -> {meta['loadavg_end']}",
             ceilings_text(results), *_kernels_lines(meta), ""]
    if results.get("models"):
        parts += [_table(HEADER, model_rows(results)), ""]
    if rows := train_rows(results):
        parts += [_table(TRAIN_HEADER, rows), ""]
    if rows := memory_rows(results):
        parts += [_table(MEMORY_HEADER, rows), ""]
    if results.get("data"):
        parts += [_table(("data", "rate"), data_rows(results)), ""]
    parts += targets_text(results)
    return "\n".join(parts)


def render_markdown(results: dict[str, Any]) -> str:
    """The same content as markdown tables."""
    meta = results["meta"]
    parts = [f"# avtoolkit benchmark ({meta['mode']})", "",
             f"{meta['date']}, {meta['cpu']}, {meta['threads']} threads, torch {meta['torch']}, "
             f"onnxruntime {meta['onnxruntime']}; load average {meta['loadavg_start']} -> {meta['loadavg_end']}.",
             "", ceilings_text(results) + ".", *(line + "." for line in _kernels_lines(meta)), ""]
    if results.get("models"):
        parts += ["## Models", "", _markdown(HEADER, model_rows(results)), ""]
    if rows := train_rows(results):
        parts += ["## Training paths", "", "Forward + loss + backward + AdamW, timed in alternating rounds in "
                  "one process; CPU time of this process (summed over its threads), so waiting for a core "
                  "held by another process does not count.", "", _markdown(TRAIN_HEADER, rows), ""]
    if rows := memory_rows(results):
        parts += ["## Memory", "", "Peak resident memory of a fresh process that builds the model and runs "
                  "the path (`ru_maxrss`); `run MiB` is how far the run raised it above the built model.", "",
                  _markdown(MEMORY_HEADER, rows), ""]
    if results.get("data"):
        parts += ["## Data", "", _markdown(("data", "rate"), data_rows(results)), ""]
    if results.get("targets"):
        parts += ["## Targets", ""] + [f"- {t}" for t in targets_text(results)] + [""]
    for recipe, prof in results.get("profiles", {}).items():
        parts += [f"## Where the time goes: {recipe}", "", "| layer kind | ms per call |", "|---|---|"]
        parts += [f"| {k} | {v} |" for k, v in prof["by_layer_kind_ms"]] + [""]
        parts += ["| op | self ms | calls |", "|---|---|---|"]
        parts += [f"| {k} | {v} | {n} |" for k, v, n in prof["top_ops_ms"]] + [""]
    return "\n".join(parts)


def write_results(results: dict[str, Any], out_dir: Path, stem: str) -> tuple[Path, Path]:
    """Writes ``<stem>.json`` and ``<stem>.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(render_markdown(results))
    return json_path, md_path
