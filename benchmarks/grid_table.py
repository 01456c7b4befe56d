"""The GRID results table: `avtoolkit noise-eval` figures beside pocketsphinx, and the issue's targets checked.

    python benchmarks/grid_table.py runs/noise/noise_eval.json \\
        --peer benchmarks/results/grid_pocketsphinx/pocketsphinx.json [--decoder greedy ...] [--md out.md]

Reads noise-eval's JSON (and pocketsphinx's, which has the same rows) and prints, per noise
type, one row per input and decoder with WER % at each SNR, then every target of the GRID
issue with its measured value and whether it is met. Nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def cells(rows: list[dict]) -> dict[tuple[str, str, str, str], float]:
    """(decoder, noise, inputs, snr) -> WER %."""
    return {(r["decoder"], r["noise"], r["inputs"], r["snr"]): 100 * r["wer"] for r in rows}


def targets(c: dict, decoder: str, noises: list[str], snrs: list[str], peer: str | None) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for one decoder of the models."""
    out = []
    ao = c.get((decoder, noises[0], "audio-only", "clean"))
    if ao is not None:
        out.append(("audio-only clean WER <= 1%", f"{ao:.1f}%", ao <= 1.0))
    vo = c.get((decoder, noises[0], "video-only", "clean"))
    if vo is not None:
        out.append(("video-only WER <= 10%", f"{vo:.1f}%", vo <= 10.0))
    av0, ao0 = c.get((decoder, "babble", "audio-visual", "0")), c.get((decoder, "babble", "audio-only", "0"))
    if av0 is not None and ao0 is not None:
        out.append(("audio-visual at 0 dB babble <= half of audio-only", f"{av0:.1f}% vs {ao0:.1f}% "
                    f"(ratio {av0 / ao0:.2f})", av0 <= ao0 / 2))
    for noise in noises:
        if not any((decoder, noise, "audio-visual", snr) in c for snr in snrs):
            continue  # an audio-only or video-only model: nothing to compare
        worse = []
        for snr in snrs:
            av = c.get((decoder, noise, "audio-visual", snr))
            singles = [c.get((decoder, noise, n, snr)) for n in ("audio-only", "video-only")]
            singles = [s for s in singles if s is not None]
            if av is not None and singles and av > min(singles) + 1.0:
                worse.append(f"{snr}: {av:.1f} vs {min(singles):.1f}")
        out.append((f"audio-visual <= better single modality + 1 at every SNR ({noise})",
                    "; ".join(worse) or "met at every SNR", not worse))
    if peer is not None:
        for noise in noises:
            lost = [f"{snr}: {c[(decoder, noise, 'audio-only', snr)]:.1f} vs {c[(peer, noise, 'audio-only', snr)]:.1f}"
                    for snr in snrs if (decoder, noise, "audio-only", snr) in c and (peer, noise, "audio-only", snr) in c
                    and c[(decoder, noise, "audio-only", snr)] >= c[(peer, noise, "audio-only", snr)]]
            out.append((f"audio-only beats pocketsphinx at every SNR ({noise})", "; ".join(lost) or "met at every SNR",
                        not lost))
    return out


def markdown(result: dict, peer: dict | None, decoders: list[str] | None) -> str:
    rows = list(result["rows"]) + (list(peer["rows"]) if peer else [])
    c = cells(rows)
    decs = decoders or result["decoders"]
    snrs, noises = result["snrs"], result["noises"]
    peer_name = peer["decoders"][0] if peer else None
    lines = []
    for noise in noises:
        lines += [f"**{noise} noise** (WER %)", "",
                  "| input | decoder | " + " | ".join(s if s == "clean" else f"{s} dB" for s in snrs) + " |",
                  "| --- | --- |" + " ---: |" * len(snrs)]
        for inputs in result["inputs"]:
            for d in decs:
                vals = [c.get((d, noise, inputs, s)) for s in snrs]
                lines.append(f"| {inputs} | {d} | " + " | ".join("-" if v is None else f"{v:.1f}" for v in vals) + " |")
        if peer_name:
            vals = [c.get((peer_name, noise, "audio-only", s)) for s in snrs]
            lines.append(f"| audio-only | {peer_name} | " + " | ".join("-" if v is None else f"{v:.1f}" for v in vals)
                         + " |")
        lines.append("")
    for d in decs:
        lines += [f"Targets, decoder `{d}`:", "", "| target | measured | met |", "| --- | --- | --- |"]
        lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in targets(c, d, noises, snrs, peer_name)]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("noise_eval", type=Path, help="noise_eval.json of `avtoolkit noise-eval`")
    p.add_argument("--peer", type=Path, help="pocketsphinx.json of benchmarks/grid_pocketsphinx.py")
    p.add_argument("--decoder", nargs="+", help="decoders to show (default: all in the file)")
    p.add_argument("--md", type=Path, help="also write the tables here")
    args = p.parse_args()
    result = json.loads(args.noise_eval.read_text())
    peer = json.loads(args.peer.read_text()) if args.peer else None
    text = markdown(result, peer, args.decoder)
    print(text)
    if args.md:
        args.md.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
