"""Preparation throughput per core of the LRS2, LRS3 and VoxCeleb2 readers, on real GRID clips.

``python benchmarks/corpora_prepare.py [--clips 8] [--crop landmarks fixed]`` lays ``--clips``
GRID s1 sentences (``../shared/data/grid_s1``, 3 s, 360x288, 25 fps) out in each corpus's own
layout in a temporary folder (LRS transcripts with GRID's word timings; a labels file for
VoxCeleb2), runs the dataset's ``prepare_data`` in this process with one worker, and prints clips
and seconds of video prepared per CPU-second (all of the process's threads) and per wall second.
"Per core" divides by CPU time, so it holds when other jobs share the machine; a machine with N
cores prepares about N times as fast (``data.prepare_workers``). Run with ``nice``; state the CPU
and the load printed at the top beside any figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID_S1 = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid_s1"


def _words(clip: str) -> list[tuple[str, float, float]]:
    rows = []
    for line in (GRID_S1 / "alignments" / "s1" / f"{clip}.align").read_text().splitlines():
        start, end, word = line.split()
        if word not in ("sil", "sp"):
            rows.append((word.upper(), int(start) / 25000, int(end) / 25000))
    return rows


def _lrs_txt(clip: str) -> str:
    words = _words(clip)
    return (f"Text:  {' '.join(w for w, _, _ in words)}\nConf:  4\nRef:   bench\n\nWORD START END ASDSCORE\n"
            + "".join(f"{w} {s:.2f} {e:.2f} 3.0\n" for w, s, e in words))


def _link(clip: str, video: Path, txt: bool = True) -> None:
    video.parent.mkdir(parents=True, exist_ok=True)
    video.symlink_to(GRID_S1 / "s1" / f"{clip}.mp4")
    if txt:
        video.with_suffix(".txt").write_text(_lrs_txt(clip))


def build(root: Path, clips: list[str]) -> dict[str, dict]:
    """The three trees under ``root``; returns corpus -> datamodule arguments."""
    lrs2, lrs3, vox = root / "lrs2", root / "lrs3", root / "vox2"
    entries = [f"{6300370419826092098 + i}/00001" for i in range(len(clips))]
    for i, (clip, entry) in enumerate(zip(clips, entries)):
        _link(clip, lrs2 / "main" / f"{entry}.mp4")
        _link(clip, lrs3 / "trainval" / f"0akiEFwt{i:03d}" / "00001.mp4")
    (lrs2 / "train.txt").write_text("".join(e + "\n" for e in entries))
    from avtoolkit.datasets.voxceleb2.labels import write_labels

    keys = [f"dev/mp4/id{10000 + i}/vid/00001" for i in range(len(clips))]
    for clip, key in zip(clips, keys):
        _link(clip, vox / f"{key}.mp4", txt=False)
    labels = write_labels(root / "labels.tsv", {"recipe": "bench"},
                          [(k, " ".join(w for w, _, _ in _words(c)).lower()) for k, c in zip(keys, clips)])
    return {"lrs2": {"root": str(lrs2), "use_pretrain": False}, "lrs3": {"root": str(lrs3), "val_fraction": 0.0},
            "voxceleb2": {"root": str(vox), "labels": str(labels), "val_fraction": 0.0}}


def measure(corpus: str, args: dict, crop: str, cache: Path) -> tuple[int, float, float, float]:
    """``(clips, seconds of video, CPU s, wall s)`` of one preparation."""
    from avtoolkit.registry.kinds import DATASETS

    dm = DATASETS.get(corpus)(**args, crop_method=crop, cache_dir=str(cache), prepare_workers=1,
                              modalities=["audio", "video"])
    dm.sheets = 0  # contact sheets are for eyes, not part of the rate
    cpu, wall = time.process_time(), time.perf_counter()
    dm.prepare_data()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    store = dm.store()
    frames = sum(store.lengths().values())
    return dm.prepare_report.prepared, frames / 25.0, cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--crop", nargs="+", default=["landmarks", "fixed"])
    opts = parser.parse_args()
    if not (GRID_S1 / "s1").is_dir():
        sys.exit(f"needs the shared GRID s1 clips at {GRID_S1}")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if line.startswith("Model name")), "unknown CPU")
    print(f"CPU: {cpu}; load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    clips = sorted(p.stem for p in (GRID_S1 / "s1").glob("*.mp4"))[: opts.clips]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpora = build(Path(tmp), clips)
        for crop in opts.crop:
            for corpus, args in corpora.items():
                n, seconds, cpu_s, wall_s = measure(corpus, args, crop, Path(tmp) / f"cache_{corpus}_{crop}")
                rows.append((corpus, crop, n, f"{n / cpu_s:.2f}", f"{seconds / cpu_s:.1f}", f"{n / wall_s:.2f}"))
    header = ("corpus", "crop", "clips", "clips/CPU-s", "video s/CPU-s", "clips/wall-s")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)))
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
