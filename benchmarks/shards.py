"""Sharded prepared clips against the per-clip cache: read rate per loader worker, sample size, ROI
quality, preparation rate per core (LRW-size clips; GRID sentences with audio).

Run: ``nice .venv/bin/python -m benchmarks.shards [--clips 48] [--repeats 5]``. Everything runs in
this one process, one worker, OpenCV on one thread: one loader worker's work. "Per core" rates
divide by this process's CPU time, so other load on the machine does not lower them much; the
wall-clock rate is printed beside them. The LRW-size clips are written from the centre of real
GRID frames (``benchmarks.data.write_lrw_tree``), so the JPEG sizes are those of real faces.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

GRID_S1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid_s1"


def _rate(fn: Callable[[], int]) -> tuple[float, float]:
    """(items per CPU second, items per wall second) of ``fn()``, which returns its item count."""
    start, cpu = time.perf_counter(), time.process_time()
    n = fn()
    return n / (time.process_time() - cpu), n / (time.perf_counter() - start)


def machine() -> str:
    """The CPU model and the load, to print beside every figure."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} vCPU; load average {os.getloadavg()[0]:.2f} (1 min)"


def bench_lrw(work: Path, clips: int, repeats: int, quality: int) -> dict[str, Any]:
    import cv2

    from avtoolkit.data.contract import collate
    from avtoolkit.datasets._stream import ShardStream
    from avtoolkit.datasets.lrw import LRWClips, build_roi_cache, find_words, list_clips
    from avtoolkit.datasets.lrw.dataset import LRWShardItems
    from avtoolkit.store import NpzClipStore, ShardClipStore
    from benchmarks.data import write_lrw_tree

    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # what a DataLoader worker runs with
    lrw = write_lrw_tree(work, clips)
    words = find_words(lrw)
    out: dict[str, Any] = {}
    common = {"splits": ("test",), "workers": 1, "progress": False, "sheets": 0}
    out["prepare_npz"] = _rate(lambda: build_roi_cache(lrw, work / "npz", **common).prepared)
    out["prepare_shards"] = _rate(lambda: build_roi_cache(lrw, work / "sh", store_format="shards", quality=quality,
                                                          shard_size=1000, **common).prepared)
    npz = NpzClipStore(work / "npz")
    shards = ShardClipStore(work / "sh" / "shards" / "test")
    keys = npz.keys()
    out["npz_kb"] = np.mean([npz.path(k).stat().st_size for k in keys]) / 1e3
    tar_bytes = sum(p.stat().st_size for p in shards.root.glob("*.tar"))
    out["shard_kb"] = tar_bytes / len(keys) / 1e3  # whole tar (headers, metadata, padding) per sample
    errors = []
    for k in keys:
        a = npz.read(k).arrays["rois"].astype(np.float64)
        b = shards.read(k).arrays["rois"].astype(np.float64)
        errors.append((np.mean((a - b) ** 2), np.abs(a - b).mean(), np.abs(a - b).max()))
    mse, mae, worst = (np.array(e) for e in zip(*errors))
    out["psnr_db"] = float(10 * np.log10(255**2 / mse.mean()))
    out["mean_abs_err"], out["max_abs_err"] = float(mae.mean()), float(worst.max())

    dataset = LRWClips(list_clips(lrw, "test", words), work / "npz", train=False)

    batch_of = functools.partial(collate, word_boundary=True)

    def read_npz() -> int:  # items collated in batches of 8, as the stream's are
        for _ in range(repeats):
            for i in range(0, len(dataset), 8):
                batch_of([dataset[j] for j in range(i, min(i + 8, len(dataset)))])
        return len(dataset) * repeats

    def read_stream(train: bool) -> int:
        n = 0
        stream = ShardStream(shards, LRWShardItems(words), functools.partial(collate, word_boundary=True),
                             batch_size=8, shuffle=train, train=train, names=("rois", "duration"))
        for epoch in range(repeats):
            stream.set_epoch(epoch)
            n += sum(len(b["ids"]) for b in stream)  # workers=0: this process is the one loader worker
        return n

    def decode_only() -> int:
        for _ in range(repeats):
            for k in keys:
                shards.read(k, ("rois",))
        return len(keys) * repeats

    out["read_npz"] = _rate(read_npz)
    out["read_shards_eval"] = _rate(lambda: read_stream(False))
    out["read_shards_train"] = _rate(lambda: read_stream(True))
    out["decode_shards"] = _rate(decode_only)
    return out


def bench_grid(work: Path, clips: int) -> dict[str, Any] | None:
    from avtoolkit.datasets.grid.datamodule import GridDataModule

    if not (GRID_S1 / "s1").is_dir():
        return None
    dm = GridDataModule(root=str(GRID_S1), cache_dir=str(work / "grid"), max_clips={"train": clips, "val": 0, "test": 0},
                        prepare_workers=1, store_format="shards")
    rate = _rate(lambda: (dm.prepare_data(), dm.prepare_report.prepared)[1])
    index = __import__("json").loads((dm.shard_folder / "train" / "index.json").read_text())
    size = sum(p.stat().st_size for p in (dm.shard_folder / "train").glob("*.tar")) / index["samples"] / 1e3
    return {"prepare_shards": rate, "shard_kb": size, "clips": index["samples"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=48, help="LRW-size clips written and prepared")
    parser.add_argument("--grid-clips", type=int, default=12, help="GRID s1 sentences prepared (0: skip)")
    parser.add_argument("--repeats", type=int, default=5, help="epochs read for the read rates")
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality of the shards' ROIs (0: PNG)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        lrw = bench_lrw(Path(tmp), args.clips, args.repeats, args.quality)
        grid = bench_grid(Path(tmp), args.grid_clips) if args.grid_clips else None
    print(f"machine: {machine()}")
    print(f"LRW-size clips: {args.clips} (29 frames, 96x96 ROIs, 'fixed' crop), read {args.repeats} times; "
          f"JPEG quality {args.quality}")
    print(f"{'measure':44s} {'per core':>12s} {'wall':>12s}")
    for name, label in (("read_npz", "read per-clip .npz cache (LRWClips, eval), clips/s"),
                        ("read_shards_eval", "read shards (ShardStream, eval), clips/s"),
                        ("read_shards_train", "read shards (ShardStream, train augment)"),
                        ("decode_shards", "decode shard ROIs only, clips/s"),
                        ("prepare_npz", "prepare LRW -> .npz, clips/s"),
                        ("prepare_shards", "prepare LRW -> shards, clips/s")):
        per_core, wall = lrw[name]
        print(f"{label:44s} {per_core:12.1f} {wall:12.1f}")
    print(f"{'ratio shards/npz read (eval, per core)':44s} {lrw['read_shards_eval'][0] / lrw['read_npz'][0]:12.2f}")
    print(f"target >= 500 clips/s per loader worker (shards, train): "
          f"{'met' if lrw['read_shards_train'][0] >= 500 else 'MISSED'}")
    print(f"sample size: npz {lrw['npz_kb']:.1f} KB, shard {lrw['shard_kb']:.1f} KB per clip "
          f"(ratio {lrw['shard_kb'] / lrw['npz_kb']:.2f})")
    print(f"ROI quality, shard vs npz crops: PSNR {lrw['psnr_db']:.1f} dB, mean |error| {lrw['mean_abs_err']:.2f}, "
          f"max |error| {lrw['max_abs_err']:.0f} grey levels")
    if grid:
        per_core, wall = grid["prepare_shards"]
        print(f"GRID s1 -> shards ({grid['clips']} sentences, face crop + 16 kHz audio): {per_core:.2f} clips/s "
              f"per core ({wall:.2f} wall), {grid['shard_kb']:.1f} KB per clip")
    print(f"after: {machine()}")


if __name__ == "__main__":
    main()
