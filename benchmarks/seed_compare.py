"""``lrw_effv2t`` against the seed code's own model, side by side in one process.

The seed code is sadevans/EfLipReading (its ``E2E`` model with ``efficient_net_size="T"``;
measured at commit 13869604). The project keeps none of its code: the user points
``--seed-checkout`` at their own clone and the model is imported from it at run time (it
needs only torch, numpy and PyYAML from that checkout's requirements).

Every path is a full training step (forward, NLL, backward, AdamW) on the same batch of 8
clips of 29 grayscale 88x88 frames and 500 classes, timed in alternating blocks (A B C A B
C ...) so load from other processes slows every path alike; ratios are read within one run.
Then eager fp32 inference at batch 1 and 16. Each optimizer is the one its code builds: the
seed's ``AdamW(betas=(0.9, 0.98))`` at torch's CPU default, ours from the engine's
:func:`~avtoolkit.engine.optim.build_optimizer`.

    .venv/bin/python -m benchmarks.seed_compare --seed-checkout /path/to/EfLipReading
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        .venv/bin/python -m benchmarks.seed_compare \\
        --seed-checkout /path/to/EfLipReading          # the kernels an AVX2-only CPU runs

``--profile`` adds the top aten ops (self CPU time, forward and backward) of both steps.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

BATCH, FRAMES, SIZE, CLASSES = 8, 29, 88, 500
SEED = "seed EfLipReading T"


def load_seed_model(checkout: Path, num_classes: int = CLASSES) -> nn.Module:
    """The seed code's ``E2E(config, num_classes, efficient_net_size="T")`` from the user's checkout.

    Raises:
        SystemExit: (code 2) the checkout lacks ``scripts/model/e2e.py`` or its model config.
    """
    import yaml

    config_path = checkout / "scripts" / "configs" / "model" / "default.yaml"
    if not (checkout / "scripts" / "model" / "e2e.py").is_file() or not config_path.is_file():
        print(f"error: --seed-checkout {checkout}: no scripts/model/e2e.py and scripts/configs/model/default.yaml "
              "(expected a clone of github.com/sadevans/EfLipReading)", file=sys.stderr)
        raise SystemExit(2)
    sys.path.insert(0, str(checkout))
    try:
        e2e = importlib.import_module("scripts.model.e2e")
    finally:
        sys.path.remove(str(checkout))
    config = yaml.safe_load(config_path.read_text())
    return e2e.E2E(config, num_classes=num_classes, efficient_net_size="T")


def load_ours(recipe: str = "recipes/lrw_effv2t.yaml") -> nn.Module:
    from avtoolkit import build_model

    return build_model(recipe)


def seed_commit(checkout: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short=8", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"


def batches(batch_size: int, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The same clips for both models: ours ``[B, T, 1, H, W]`` + lengths + word boundary; theirs ``[B, 1, T, H, W]``."""
    gen = torch.Generator().manual_seed(seed)
    video = torch.randn(batch_size, FRAMES, 1, SIZE, SIZE, generator=gen)
    boundary = torch.zeros(batch_size, FRAMES)
    boundary[:, FRAMES // 3: 2 * FRAMES // 3] = 1.0
    ours = {"video": video, "video_lengths": torch.full((batch_size,), FRAMES, dtype=torch.long),
            "word_boundary": boundary}
    labels = torch.randint(0, CLASSES, (batch_size,), generator=gen)
    return ours, video.transpose(1, 2).contiguous(), labels


def ours_step(model: nn.Module, batch: dict[str, torch.Tensor], labels: torch.Tensor, *, channels_last: bool,
              bf16: bool) -> Callable[[], float]:
    """One optimizer step of a private copy of our model, as the engine runs it."""
    from avtoolkit.engine.memory_format import to_channels_last
    from avtoolkit.engine.optim import build_optimizer

    model = copy.deepcopy(model).train()
    if channels_last:
        to_channels_last(model)
    optimizer = build_optimizer(model.parameters(), {"name": "adamw", "lr": 3e-4, "weight_decay": 0.01})

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(batch)
        loss = F.nll_loss(out["log_probs"].float(), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def seed_step(model: nn.Module, video: torch.Tensor, labels: torch.Tensor) -> Callable[[], float]:
    """One optimizer step of a private copy of the seed model, as its LightningModule runs it."""
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, betas=(0.9, 0.98))

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = F.nll_loss(model(video), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def alternate(steps: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds of each step, timed round-robin after ``warmup`` untimed calls each."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    out: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in steps}
    for _ in range(rounds):
        for name, fn in steps.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            out[name]["cpu"].append(time.process_time() - cpu)
            out[name]["wall"].append(time.perf_counter() - wall)
    return out


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def default_path() -> tuple[str, bool, bool]:
    """What ``trainer.precision: auto`` + ``channels_last: true`` give on this machine."""
    from avtoolkit.engine.precision import resolve_precision

    bf16 = resolve_precision("auto", "cpu").precision.startswith("bf16")
    return ("ours recipe default (bf16+channels-last)" if bf16 else "ours recipe default (fp32+channels-last)"), True, bf16


def train_table(ours: nn.Module, seed: nn.Module, threads: int, rounds: int) -> list[str]:
    torch.set_num_threads(threads)
    batch, video, labels = batches(BATCH)
    steps = {SEED: seed_step(seed, video, labels),
             "ours fp32 NCHW": ours_step(ours, batch, labels, channels_last=False, bf16=False),
             "ours fp32 channels-last": ours_step(ours, batch, labels, channels_last=True, bf16=False)}
    name, cl, bf16 = default_path()
    if bf16:
        steps[name] = ours_step(ours, batch, labels, channels_last=cl, bf16=bf16)
    before = load()
    times = alternate(steps, rounds)
    after = load()
    base = {k: statistics.median(times[SEED][k]) for k in ("wall", "cpu")}
    lines = [f"\ntraining step, batch {BATCH}, {threads} thread(s), {rounds} alternating rounds "
             f"({before} before, {after} after)",
             "| path | wall s/step | CPU s/step | speed-up vs seed (wall) | (CPU) |", "|---|---|---|---|---|"]
    for path, t in times.items():
        wall, cpu = statistics.median(t["wall"]), statistics.median(t["cpu"])
        lines.append(f"| {path} | {wall:.2f} | {cpu:.2f} | {base['wall'] / wall:.2f}x | {base['cpu'] / cpu:.2f}x |")
    return lines


def infer_table(ours: nn.Module, seed: nn.Module, threads: int, rounds: int) -> list[str]:
    from avtoolkit.engine.memory_format import to_channels_last

    torch.set_num_threads(threads)
    lines = [f"\neager fp32 inference, {threads} thread(s) ({load()})",
             "| batch | seed ms/call | ours NCHW ms/call | ratio | ours channels-last ms/call | ratio |",
             "|---|---|---|---|---|---|"]
    ours_cl = copy.deepcopy(ours)
    to_channels_last(ours_cl)
    for model in (ours, ours_cl, seed):
        model.eval()
    for size in (1, 16):
        batch, video, _ = batches(size, seed=size)
        with torch.inference_mode():
            steps = {"seed": lambda: seed(video), "ours": lambda: ours(batch), "ours_cl": lambda: ours_cl(batch)}
            times = alternate(steps, rounds=max(3, rounds if size == 16 else 4 * rounds))
        ms = {k: 1e3 * statistics.median(v["wall"]) for k, v in times.items()}
        lines.append(f"| {size} | {ms['seed']:.0f} | {ms['ours']:.0f} | {ms['seed'] / ms['ours']:.2f}x | "
                     f"{ms['ours_cl']:.0f} | {ms['seed'] / ms['ours_cl']:.2f}x |")
    return lines


def profile_lines(ours: nn.Module, seed: nn.Module, threads: int, limit: int) -> list[str]:
    from benchmarks.hotspots import top_ops

    torch.set_num_threads(threads)
    batch, video, labels = batches(BATCH)
    name, cl, bf16 = default_path()
    lines: list[str] = []
    for label, step in ((SEED, seed_step(seed, video, labels)),
                        ("ours fp32 channels-last", ours_step(ours, batch, labels, channels_last=True, bf16=False)),
                        ("ours fp32 NCHW", ours_step(ours, batch, labels, channels_last=False, bf16=False))):
        every = top_ops(step, limit=10_000, grad=True)
        rows, total = every[:limit], sum(r[1] for r in every)
        lines += [f"\nprofile, one training step, {label}, {threads} thread(s) ({load()}): "
                  f"{total:.0f} ms self CPU in all ops", "| op | self CPU ms | calls |", "|---|---|---|"]
        lines += [f"| {op} | {ms:.0f} | {n} |" for op, ms, n in rows]
    return lines


def machine_lines() -> list[str]:
    from benchmarks.models import cpu_kernels, kernels_line

    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return [f"CPU: {model}, {os.cpu_count()} logical CPUs; torch {torch.__version__}",
            "kernels: " + kernels_line(cpu_kernels())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed-checkout", type=Path, required=True, help="a clone of sadevans/EfLipReading")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per training path")
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--no-infer", action="store_true")
    parser.add_argument("--profile", action="store_true", help="top ops of both training steps")
    parser.add_argument("--profile-top", type=int, default=15)
    args = parser.parse_args(argv)
    seed = load_seed_model(args.seed_checkout)
    torch.manual_seed(0)
    ours = load_ours()
    count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    lines = machine_lines() + [f"seed code: {args.seed_checkout} at {seed_commit(args.seed_checkout)}, "
                               f"{count(seed):.2f}M parameters; ours: recipes/lrw_effv2t.yaml, {count(ours):.2f}M",
                               "times are under whatever load the machine had (shown); read the ratios"]
    print("\n".join(lines), flush=True)
    for threads in args.threads:
        block: list[str] = []
        if not args.no_train:
            block += train_table(ours, seed, threads, args.rounds)
        if not args.no_infer:
            block += infer_table(ours, seed, threads, args.rounds)
        if args.profile:
            block += profile_lines(ours, seed, threads, args.profile_top)
        print("\n".join(block), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
