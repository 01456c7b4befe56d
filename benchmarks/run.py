"""``make bench``: one process measures the CPU ceiling, every flagship recipe and the data path.

Usage::

    python benchmarks/run.py            # full run (minutes), what docs/benchmarks.md reports
    python benchmarks/run.py --quick    # smoke run, under 2 minutes
    python benchmarks/run.py --only lrw_effv2t,data --out /tmp/bench

Results go to ``benchmarks/results/<mode>.json`` and ``.md`` and a table is printed.
Everything runs on ``--threads`` CPU threads (2 by default: torch and ONNX Runtime alike).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: import the ``benchmarks`` package from the repo
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))

FLAGSHIPS = ("lrw_effv2t", "lrw_effv2s", "lrw_effv2b", "lrw_resnet18_mstcn", "avasr")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repetitions, small batches (CI smoke run)")
    parser.add_argument("--only", default="", help="comma-separated recipe names and/or 'data' (default: all)")
    parser.add_argument("--recipe", action="append", default=[], type=Path,
                        help="benchmark this recipe file too (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and ONNX Runtime")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile path (slow to compile)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime path")
    parser.add_argument("--bf16", action="store_true",
                        help="run the bf16 paths (eager_bf16, fast_bf16) even in --quick and where bf16 is emulated "
                             "(marked EMULATED); default: full runs on CPUs with native bf16 only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results folder")
    return parser.parse_args(argv)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ceilings_line(ceilings: dict[str, Any]) -> str:
    """``fp32 181.0, bf16 420.3, int8 880.1 GFLOP/s`` (GOP/s for int8); a skipped format says why.

    Examples:
        >>> ceilings_line({"fp32": {"gflops": 181.0}, "bf16": {"skipped": "no native bf16"}, "cpu_flags": []})
        'fp32 181.0 GFLOP/s, bf16 skipped (no native bf16)'
    """
    parts = []
    for fmt in ("fp32", "bf16", "int8"):
        entry = ceilings.get(fmt)
        if entry is None:
            continue
        parts.append(f"{fmt} {entry['gflops']:.1f} {'GOP/s' if fmt == 'int8' else 'GFLOP/s'}" if "gflops" in entry
                     else f"{fmt} skipped ({entry.get('skipped', '')})")
    return ", ".join(parts)


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against this run's figures (only those this run measured)."""
    targets = []
    ceiling = results["ceiling"]["gflops"]

    def ok_paths(recipe: str) -> dict[str, Any]:
        paths = results.get("models", {}).get(recipe, {}).get("paths", {})
        return {k: v for k, v in paths.items() if "error" not in v}

    def fastest(paths: dict[str, Any]) -> tuple[str, float]:
        name = min(paths, key=lambda k: paths[k]["latency"]["median_ms"])
        return name, paths[name]["latency"]["median_ms"]

    if paths := ok_paths("lrw_effv2t"):
        best = max(paths, key=lambda k: paths[k]["throughput"]["ceiling_fraction"])
        best_frac = paths[best]["throughput"]["ceiling_fraction"]
        fmt = paths[best]["throughput"].get("ceiling_format", "fp32")
        own = results.get("ceilings", {}).get(fmt, {}).get("gflops", ceiling)
        path, best_b1 = fastest(paths)
        targets.append({"what": "lrw_effv2t batch-16 throughput, fraction of its format's ceiling",
                        "recipe": "lrw_effv2t",
                        "measured": f"{100 * best_frac:.0f}% of {own:.0f} GFLOP/s ({best}, {fmt})", "target": ">= 40%",
                        "met": best_frac >= 0.40})
        targets.append({"what": "lrw_effv2t batch-1 latency (fastest path)", "recipe": "lrw_effv2t",
                        "measured": f"{best_b1:.1f} ms ({path})", "target": "< 35 ms", "met": best_b1 < 35})
    if paths := ok_paths("lrw_effv2t"):
        for now, before, label in (("eager", "eager_before", "fp32"), ("eager_bf16", "eager_bf16_before", "bf16")):
            if now not in paths or before not in paths:
                continue
            b1 = paths[before]["latency"]["median_ms"] / paths[now]["latency"]["median_ms"]
            many = paths[now]["throughput"]["clips_per_s"] / paths[before]["throughput"]["clips_per_s"]
            batch = paths[now]["throughput"]["batch"]
            targets.append({"what": f"lrw_effv2t eager forward {label} vs before the inference route (same run)",
                            "recipe": "lrw_effv2t", "measured": f"{b1:.2f}x at batch 1, {many:.2f}x at batch {batch}",
                            "target": ">= 1.5x at both", "met": min(b1, many) >= 1.5})
    if paths := ok_paths("avasr"):
        path, best_b1 = fastest(paths)
        eager = paths.get("eager", {}).get("latency", {}).get("median_ms", float("inf"))
        targets.append({"what": "avasr 5 s clip batch-1 latency (fastest path)", "recipe": "avasr",
                        "measured": f"{best_b1:.1f} ms ({path})", "target": "< 15 ms", "met": best_b1 < 15})
        targets.append({"what": "avasr 5 s clip batch-1 latency (eager)", "recipe": "avasr",
                        "measured": f"{eager:.1f} ms", "target": "< 50 ms", "met": eager < 50})
    for recipe in ("lrw_effv2t", "avasr"):
        train = results.get("models", {}).get(recipe, {}).get("train_paths", {})
        timed = {k: v for k, v in train.items() if v.get("speedup")}
        if len(timed) > 1:
            best = max(timed, key=lambda k: timed[k]["speedup"])
            targets.append({"what": f"{recipe} training step vs today's (CPU time, same run)", "recipe": recipe,
                            "measured": f"{timed[best]['speedup']:.2f}x ({best})", "target": ">= 2x",
                            "met": timed[best]["speedup"] >= 2.0})
    prep = results.get("data", {}).get("prepare_lrw_fixed", {})
    if "clips_per_s_per_core" in prep:
        rate = prep["clips_per_s_per_core"]
        targets.append({"what": "prepare LRW clips (fixed crop)", "recipe": None,
                        "measured": f"{rate:.1f} clips/s per core", "target": ">= 25", "met": rate >= 25})
    return targets


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every selected measurement; returns the results dict (also written to ``args.out``)."""
    import onnxruntime
    import torch

    from benchmarks import models as model_bench
    from benchmarks.ceiling import ceilings, path_format
    from benchmarks.data import bench_data
    from benchmarks.hotspots import profile_report
    from benchmarks.report import render_text, write_results

    torch.set_num_threads(args.threads)
    only = {name for name in args.only.split(",") if name}
    settings = model_bench.Settings.quick(args.threads) if args.quick else model_bench.Settings(threads=args.threads)
    settings = model_bench.Settings(**{**vars(settings), "onnx": not args.no_onnx, "compile": args.compile,
                                       **({"bf16": True, "bf16_emulated": True} if args.bf16 else {})})
    results: dict[str, Any] = {"meta": {
        "mode": "quick" if args.quick else "full", "threads": args.threads, "cpu": _cpu_name(),
        "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()], "settings": vars(settings),
        "kernels": model_bench.cpu_kernels()}}
    print("kernels:", model_bench.kernels_line(results["meta"]["kernels"]), flush=True)
    results["ceilings"] = ceilings(runs=5 if args.quick else 20)
    results["ceiling"] = results["ceilings"]["fp32"]  # the fp32 one, what check_targets reads
    print("matmul ceilings on", args.threads, "threads:", ceilings_line(results["ceilings"]), flush=True)

    recipes = [(name, ROOT / "recipes" / f"{name}.yaml") for name in FLAGSHIPS if not only or name in only]
    recipes += [(path.stem, path) for path in args.recipe]
    results["models"], results["profiles"] = {}, {}
    for name, path in recipes:
        print(f"{name} ({path})", flush=True)
        if not path.is_file():
            results["models"][name] = {"skipped": f"no recipe file {path}"}
            print(f"  skipped: no recipe file {path}")
            continue
        try:
            from avtoolkit import build_model

            model = build_model(path).eval()
            results["models"][name] = model_bench.bench_model(model, results["ceiling"]["gflops"], settings,
                                                              memory_recipe=path)
        except Exception as exc:  # one broken recipe must not hide the other figures
            results["models"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  ERROR {results['models'][name]['error']}")
            continue
        missed = [t for t in check_targets(results) if t["recipe"] == name and not t["met"]]
        if missed and settings.profile:  # say where the time goes in the fastest fp32 PyTorch path
            from benchmarks import fast_paths as fast

            batch = model_bench.example_batch(model, 1)
            fast_model = fast.optimize_for_cpu(model, (batch,))
            results["profiles"][name] = profile_report(fast_model, lambda: fast_model(batch))
            print("  where the time goes (fast_fp32, batch 1, ms per call):")
            for kind, ms in results["profiles"][name]["by_layer_kind_ms"]:
                print(f"    {ms:8.2f}  {kind}")

    if not only or "data" in only:
        print("data", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            results["data"] = bench_data(Path(tmp), args.quick)
    # The ceiling again at the end: if it moved, the machine was busy during the run.
    # Fractions use the better of the two: a busy moment must not make a model look faster.
    again = ceilings(runs=5 if args.quick else 20)
    for fmt, ceiling in results["ceilings"].items():
        if isinstance(ceiling, dict) and "gflops" in ceiling and "gflops" in again.get(fmt, {}):
            ceiling["gflops_start"], ceiling["gflops_end"] = ceiling["gflops"], again[fmt]["gflops"]
            ceiling["gflops"] = max(ceiling["gflops_start"], ceiling["gflops_end"])
    for res in results["models"].values():
        for name, entry in res.get("paths", {}).items():
            if "throughput" in entry:  # each path against the ceiling of the format it computes in
                fmt = path_format(name)
                own = results["ceilings"].get(fmt, {}).get("gflops") or results["ceiling"]["gflops"]
                entry["throughput"]["ceiling_format"] = fmt if "gflops" in results["ceilings"].get(fmt, {}) else "fp32"
                entry["throughput"]["ceiling_fraction"] = entry["throughput"]["gflops"] / own
    results["targets"] = check_targets(results)
    results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    json_path, md_path = write_results(results, args.out, results["meta"]["mode"])
    print()
    print(render_text(results))
    print(f"\nwritten: {json_path} and {md_path}")
    return results


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
