"""Plots the learning curves printed by grid_audio_probe.py (its stdout log) into one PNG.

    python benchmarks/grid_probe_plot.py /tmp/grid_probe.log [more.log ...] --out docs/grid_audio_probe.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_curves(paths: list[Path]) -> dict[str, list[dict]]:
    """Variant -> its per-epoch rows, from lines ``<variant> {json}`` (a later log wins)."""
    curves: dict[str, list[dict]] = {}
    for path in paths:
        seen: dict[str, list[dict]] = {}
        for line in path.read_text().splitlines():
            name, _, rest = line.partition(" ")
            if rest.startswith("{"):
                seen.setdefault(name, []).append(json.loads(rest))
        curves.update(seen)
    return curves


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--only", nargs="*", help="variants to draw (default: all)")
    args = p.parse_args()
    curves = read_curves(args.logs)
    fig, (ax_loss, ax_cer, ax_wer) = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, rows in curves.items():
        if args.only and name not in args.only:
            continue
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], label=name)
        ax_cer.plot(epochs, [100 * r["test_cer"] for r in rows], label=name)
        ax_wer.plot(epochs, [100 * r["test_wer"] for r in rows], label=name)
    ax_loss.set(title="train CTC loss", xlabel="epoch", yscale="log")
    ax_cer.set(title="test CER % (greedy)", xlabel="epoch", ylim=(0, 100))
    ax_wer.set(title="test WER % (greedy)", xlabel="epoch", ylim=(0, 100))
    ax_wer.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
