"""Training throughput of a recipe model on one GPU: bf16 autocast, channels-last, synthetic batches.

Measures what the model costs, not the data loader: batches of the recipe's shape (an LRW
clip: 29 frames of 88x88 grayscale mouth crops and word boundaries; an AV-ASR example: a 5 s
utterance, 500 log-mel frames and 125 video frames of 64x64, 20-character CTC targets) are
made once on the device and reused. Prints clips/s, the time an LRW epoch (488,766 training
clips) would take, inference latency and throughput (``--infer-batches``), and peak memory
(GPU: allocated; CPU: none), and writes the figures as JSON with ``--out``.

Usage (GPU; the issue's target is >= 1,500 clips/s for lrw_effv2t on one H100/H200)::

    python benchmarks/gpu_train_throughput.py --batch 128 --steps 60
    python benchmarks/gpu_train_throughput.py --batch 256 --compile --out gpu.json
    python benchmarks/gpu_train_throughput.py --recipe recipes/avasr.yaml --batch 64 --out avasr.json

Streamed (``--stream-workers N``): the same steps fed by a ``DataLoader`` of N workers reading
LRW-size clips from tar shards (``--shards DIR``, a split folder with ``index.json``; without it,
``--stream-clips`` clips written to a temporary shard folder from real GRID mouth crops), with
training augmentation, pinned memory and non-blocking copies; reports streamed clips/s beside
the synthetic figure (word-classification recipes)::

    python benchmarks/gpu_train_throughput.py --batch 128 --steps 60 --stream-workers 8

CPU smoke check (any machine)::

    python benchmarks/gpu_train_throughput.py --device cpu --batch 2 --steps 2 --warmup 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))

LRW_TRAIN_CLIPS = 488_766
FRAMES, SIZE, CLASSES = 29, 88, 500


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "lrw_effv2t.yaml")
    parser.add_argument("--override", action="append", default=[], help="recipe override key=value (repeatable)")
    parser.add_argument("--device", default="auto", help="'auto' (cuda when available), 'cuda', 'cpu'")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=50, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (cuDNN autotuning)")
    parser.add_argument("--no-bf16", action="store_true", help="train in fp32 instead of bf16 autocast")
    parser.add_argument("--no-channels-last", action="store_true", help="keep NCHW weights")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--infer-batches", default="1,16",
                        help="comma-separated batch sizes whose inference is timed ('' for none)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--stream-workers", type=int, default=None,
                        help="also time steps fed from shards by this many loader workers")
    parser.add_argument("--shards", type=Path, help="an LRW shard split folder (default: made from GRID crops)")
    parser.add_argument("--stream-clips", type=int, default=1024, help="clips in the made shard folder")
    return parser.parse_args(argv)


def synthetic_batches(batch: int, device: Any, count: int = 4, model: Any = None) -> list[dict[str, Any]]:
    """``count`` training batches of ``model``'s shape on ``device`` (LRW-shaped without a model).

    Classification batches carry ``label``; CTC batches carry 20-token ``targets``.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    if model is None:
        boundary = torch.zeros(batch, FRAMES)
        boundary[:, FRAMES // 3: 2 * FRAMES // 3] = 1.0
        return [{
            "video": torch.randn(batch, FRAMES, 1, SIZE, SIZE, generator=gen).to(device),
            "video_lengths": torch.full((batch,), FRAMES, dtype=torch.long, device=device),
            "word_boundary": boundary.to(device),
            "label": torch.randint(0, CLASSES, (batch,), generator=gen).to(device),
        } for _ in range(count)]
    from benchmarks.models import example_batch

    out = []
    for i in range(count):
        items = dict(example_batch(model, batch, seed=i))
        if model.task == "ctc":
            items["targets"] = torch.randint(1, 28, (batch, 20), generator=gen)
            items["target_lengths"] = torch.full((batch,), 20, dtype=torch.long)
        else:
            items["label"] = torch.randint(0, CLASSES, (batch,), generator=gen)
        out.append({k: v.to(device) for k, v in items.items()})
    return out


def _loss(model: Any, out: dict[str, Any], batch: dict[str, Any]) -> Any:
    import torch.nn.functional as F

    log_probs = out["log_probs"].float()
    if model.task == "ctc":
        lengths = out.get("lengths")
        if lengths is None:
            lengths = batch["target_lengths"].new_full((log_probs.shape[0],), log_probs.shape[1])
        return F.ctc_loss(log_probs.transpose(0, 1), batch["targets"] % log_probs.shape[-1], lengths,
                          batch["target_lengths"], blank=0, zero_infinity=True)
    # Labels modulo the model's classes: a recipe override may shrink the vocabulary.
    return F.nll_loss(log_probs, batch["label"] % log_probs.shape[-1])


def _inference(model: Any, batch: int, device: Any, use_bf16: bool, calls: int, sync: Any) -> dict[str, float]:
    """Median latency and throughput of ``calls`` forward passes at ``batch`` (eval, no grad)."""
    import statistics

    import torch

    inputs = {k: v for k, v in synthetic_batches(batch, device, 1, model)[0].items()
              if k not in ("label", "targets", "target_lengths")}
    model.eval()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        for i in range(calls + 3):
            start = time.perf_counter()
            model(inputs)
            sync()
            if i >= 3:  # three warm-up calls (cuDNN autotuning)
                times.append(time.perf_counter() - start)
    model.train()
    median = statistics.median(times)
    return {"batch": batch, "median_ms": 1e3 * median, "clips_per_s": batch / median,
            "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Builds the recipe model and times ``args.steps`` training steps; returns the figures."""
    import torch

    from avtoolkit import build_model
    from benchmarks.fast_paths import to_channels_last

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = build_model(args.recipe, args.override)
    if not args.no_channels_last:
        model = to_channels_last(model)
    model = model.to(device).train()
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, fused=True)
    batches = synthetic_batches(args.batch, device, model=model)
    use_bf16 = not args.no_bf16

    def step(batch: dict[str, Any]) -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = step_model(batch)
        loss = _loss(model, out, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach()) if device.type == "cpu" else 0.0

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for i in range(args.warmup):
        step(batches[i % len(batches)])
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for i in range(args.steps):
        step(batches[i % len(batches)])
    sync()
    seconds = time.perf_counter() - start
    clips_per_s = args.batch * args.steps / seconds
    train_peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    streamed = _streamed(args, step, sync, device) if args.stream_workers is not None else None
    inference = [_inference(model, int(b), device, use_bf16, max(3, args.steps // 2), sync)
                 for b in args.infer_batches.split(",") if b.strip()]
    return {
        "recipe": str(args.recipe), "overrides": args.override,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "bf16_autocast": use_bf16, "channels_last": not args.no_channels_last,
        "compiled": args.compile, "batch": args.batch, "steps": args.steps,
        "params": sum(p.numel() for p in model.parameters()),
        "step_ms": 1e3 * seconds / args.steps, "clips_per_s": clips_per_s,
        "lrw_epoch_minutes": LRW_TRAIN_CLIPS / clips_per_s / 60,
        "peak_memory_gib": train_peak, "task": model.task, "inference": inference, "streamed": streamed,
    }


def make_shards(folder: Path, clips: int) -> Path:
    """``clips`` LRW-size samples (29 x 96 x 96 mouth crops, word labels) in shards, from real GRID frames."""
    import numpy as np

    from avtoolkit.store import ShardClipStore
    from benchmarks.data import _source_frames

    import cv2

    sources = [np.stack([cv2.cvtColor(f[80:176, 80:176], cv2.COLOR_RGB2GRAY) for f in seq])
               for seq in _source_frames(256, FRAMES, seed=0)]
    store = ShardClipStore(folder, shard_size=256)
    for i in range(clips):
        word = f"W{i % 5}"  # within any word recipe's classes (the tiny test recipe has 5)
        store.write(f"{word}/train/{word}_{i:06d}", {"rois": sources[i % len(sources)],
                                                      "duration": np.float32(0.5)})
    store.close()
    store.write_index()
    return folder


def _streamed(args: argparse.Namespace, step: Any, sync: Any, device: Any) -> dict[str, Any]:
    """Training steps fed by loader workers from shards: clips/s end to end."""
    import functools
    import tempfile

    import torch

    from avtoolkit.data.contract import collate
    from avtoolkit.datasets._stream import ShardStream, stream_loader
    from avtoolkit.datasets.lrw.dataset import LRWShardItems
    from avtoolkit.store import ShardClipStore

    tmp = None
    folder = args.shards
    if folder is None:
        tmp = tempfile.TemporaryDirectory()
        folder = make_shards(Path(tmp.name), args.stream_clips)
    store = ShardClipStore(folder)
    words = sorted({k.split("/")[0] for k in store.keys()})
    stream = ShardStream(store, LRWShardItems(words), functools.partial(collate, word_boundary=True),
                         batch_size=args.batch, shuffle=True, train=True, names=("rois", "duration"))
    loader = stream_loader(stream, args.stream_workers)
    loader.pin_memory = device.type == "cuda"
    keys = ("video", "video_lengths", "word_boundary", "label")
    clips, timed, epoch, start = 0, 0, 0, None
    while timed < args.steps:
        stream.set_epoch(epoch)
        for batch in loader:
            batch = {k: batch[k].to(device, non_blocking=True) for k in keys}
            step(batch)
            if start is None:  # the first step waits for the workers to start: not timed
                sync()
                start = time.perf_counter()
                continue
            clips += int(batch["label"].shape[0])
            timed += 1
            if timed >= args.steps:
                break
        epoch += 1
    sync()
    seconds = time.perf_counter() - start
    if tmp is not None:
        tmp.cleanup()
    return {"workers": args.stream_workers, "steps": timed, "clips_per_s": clips / seconds,
            "lrw_epoch_minutes": LRW_TRAIN_CLIPS / (clips / seconds) / 60, "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = measure(args)
    print(f"{figures['device']}: {Path(figures['recipe']).stem} batch {figures['batch']}, "
          f"bf16 {figures['bf16_autocast']}, channels-last {figures['channels_last']}, "
          f"compiled {figures['compiled']}: {figures['clips_per_s']:.0f} training clips/s "
          f"({figures['step_ms']:.1f} ms per step); an LRW epoch in {figures['lrw_epoch_minutes']:.1f} min"
          + (f"; peak {figures['peak_memory_gib']:.2f} GiB" if figures["peak_memory_gib"] is not None else ""))
    if figures["streamed"]:
        st = figures["streamed"]
        print(f"  streamed from shards, {st['workers']} loader workers: {st['clips_per_s']:.0f} training clips/s "
              f"({st['clips_per_s'] / figures['clips_per_s']:.2f}x of synthetic batches); "
              f"an LRW epoch in {st['lrw_epoch_minutes']:.1f} min")
    for inf in figures["inference"]:
        print(f"  inference batch {inf['batch']}: {inf['median_ms']:.2f} ms, {inf['clips_per_s']:.0f} clips/s"
              + (f", peak {inf['peak_memory_gib']:.2f} GiB" if inf["peak_memory_gib"] is not None else ""))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
