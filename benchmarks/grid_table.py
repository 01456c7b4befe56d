"""The GRID results table: `avtoolkit noise-eval` figures of one or more models beside pocketsphinx, and the issue's targets checked.

    python benchmarks/grid_table.py runs/grid_avasr_from_parts/noise/noise_eval.json \\
        audio=runs/grid_audio_hybrid/noise/noise_eval.json video=runs/grid_video/noise/noise_eval.json \\
        --peer benchmarks/results/grid_pocketsphinx/pocketsphinx.json [--decoder ...] [--md out.md]

Reads noise-eval's JSON files (and pocketsphinx's, which has the same rows) and prints, per noise
type, one row per model, input and decoder with WER % at each SNR, then every target of the GRID
issue (issue 21, section 3) with its measured value and whether it is met. A file given as
``LABEL=PATH`` is a separate model: its decoders are shown as ``LABEL: decoder``, and its
single-modality rows count as "the better single modality" the audio-visual rows must not lose to.
Nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

Cells = dict[tuple[str, str, str, str], float]


def cells(rows: list[dict]) -> Cells:
    """(decoder, noise, inputs, snr) -> WER %."""
    return {(r["decoder"], r["noise"], r["inputs"], r["snr"]): 100 * r["wer"] for r in rows}


def labelled(result: dict, label: str) -> dict:
    """``result`` with every decoder renamed ``label: decoder`` (another model's rows)."""
    rename = {d: f"{label}: {d}" for d in result["decoders"]}
    return {**result, "decoders": [rename[d] for d in result["decoders"]],
            "rows": [{**r, "decoder": rename.get(r["decoder"], r["decoder"])} for r in result["rows"]]}


def _best_single(c: Cells, noise: str, snr: str) -> tuple[float, str] | None:
    """The lowest audio-only or video-only WER of any model and decoder at (noise, snr), with its row name."""
    found = [(w, f"{i} {d}") for (d, n, i, s), w in c.items()
             if n == noise and s == snr and i in ("audio-only", "video-only")]
    return min(found) if found else None


def targets(c: Cells, decoder: str, noises: list[str], snrs: list[str], peer: str | None,
            audio_ref: str | None = None) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for one decoder of the models.

    Args:
        c: every model's cells (and the peer's).
        decoder: the decoder whose rows are checked.
        audio_ref: the decoder whose audio-only rows the -5 dB babble ratio divides by (default:
            ``decoder``'s own audio-only row, that is the same model without its video).
    """
    out = []
    ao = c.get((decoder, noises[0], "audio-only", "clean"))
    if ao is not None:
        out.append(("audio-only clean WER <= 1%", f"{ao:.1f}%", ao <= 1.0))
    vo = c.get((decoder, noises[0], "video-only", "clean"))
    if vo is not None:
        out.append(("video-only WER <= 10%", f"{vo:.1f}%", vo <= 10.0))
    for noise in noises:
        if not any((decoder, noise, "audio-visual", snr) in c for snr in snrs):
            continue  # an audio-only or video-only model: nothing to compare
        worse = []
        for snr in snrs:
            av, best = c.get((decoder, noise, "audio-visual", snr)), _best_single(c, noise, snr)
            if av is not None and best is not None and av > best[0]:
                worse.append(f"{snr}: {av:.1f} vs {best[0]:.1f} ({best[1]})")
        out.append((f"audio-visual no worse than the better single modality at every SNR ({noise})",
                    "; ".join(worse) or "met at every SNR", not worse))
    av5 = c.get((decoder, "babble", "audio-visual", "-5"))
    for ref in dict.fromkeys([decoder, audio_ref or decoder]):
        ao5 = c.get((ref, "babble", "audio-only", "-5"))
        if av5 is not None and ao5 is not None:
            who = "its own audio-only" if ref == decoder else f"{ref} audio-only"
            out.append((f"audio-visual at -5 dB babble <= a third of {who}",
                        f"{av5:.1f}% vs {ao5:.1f}% (ratio {av5 / ao5:.2f})", av5 <= ao5 / 3))
    if peer is not None:
        for noise in noises:
            lost = [f"{snr}: {c[(decoder, noise, 'audio-only', snr)]:.1f} vs {c[(peer, noise, 'audio-only', snr)]:.1f}"
                    for snr in snrs if (decoder, noise, "audio-only", snr) in c and (peer, noise, "audio-only", snr) in c
                    and c[(decoder, noise, "audio-only", snr)] >= c[(peer, noise, "audio-only", snr)]]
            if any((decoder, noise, "audio-only", snr) in c for snr in snrs):
                out.append((f"audio-only beats pocketsphinx at every SNR ({noise})", "; ".join(lost) or "met at every SNR",
                            not lost))
    return out


def markdown(result: dict, peer: dict | None, decoders: list[str] | None, others: list[dict] | None = None,
             audio_ref: str | None = None) -> str:
    """The WER tables and the targets of ``result`` (the main model), ``others`` (labelled models) and ``peer``."""
    models = [result, *(others or [])]
    rows = [r for m in models for r in m["rows"]] + (list(peer["rows"]) if peer else [])
    c = cells(rows)
    decs = decoders or [d for m in models for d in m["decoders"]]
    snrs, noises = result["snrs"], result["noises"]
    peer_name = peer["decoders"][0] if peer else None
    lines = []
    for noise in noises:
        lines += [f"**{noise} noise** (WER %)", "",
                  "| input | decoder | " + " | ".join(s if s == "clean" else f"{s} dB" for s in snrs) + " |",
                  "| --- | --- |" + " ---: |" * len(snrs)]
        for m in models:
            for inputs in m["inputs"]:
                for d in (d for d in decs if d in m["decoders"]):
                    vals = [c.get((d, noise, inputs, s)) for s in snrs]
                    if any(v is not None for v in vals):
                        lines.append(f"| {inputs} | {d} | " + " | ".join("-" if v is None else f"{v:.1f}" for v in vals)
                                     + " |")
        if peer_name:
            vals = [c.get((peer_name, noise, "audio-only", s)) for s in snrs]
            lines.append(f"| audio-only | {peer_name} | " + " | ".join("-" if v is None else f"{v:.1f}" for v in vals)
                         + " |")
        lines.append("")
    for d in decs:
        found = targets(c, d, noises, snrs, peer_name, audio_ref)
        if not found:
            continue
        lines += [f"Targets, decoder `{d}`:", "", "| target | measured | met |", "| --- | --- | --- |"]
        lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in found]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("noise_eval", nargs="+", help="noise_eval.json of `avtoolkit noise-eval`: the main model, then "
                   "LABEL=PATH for each other model")
    p.add_argument("--peer", type=Path, help="pocketsphinx.json of benchmarks/grid_pocketsphinx.py")
    p.add_argument("--decoder", nargs="+", help="decoders to show (default: all in the files)")
    p.add_argument("--audio-ref", help="the decoder row (e.g. 'audio: joint ...') whose audio-only WER the -5 dB "
                   "babble target divides by, besides the model's own audio-only mode")
    p.add_argument("--md", type=Path, help="also write the tables here")
    args = p.parse_args()
    main_file, *rest = args.noise_eval
    result = json.loads(Path(main_file).read_text())
    others = []
    for spec in rest:
        label, sep, path = spec.partition("=")
        if not sep:
            p.error(f"{spec}: other models are given as LABEL=PATH")
        others.append(labelled(json.loads(Path(path).read_text()), label))
    peer = json.loads(args.peer.read_text()) if args.peer else None
    text = markdown(result, peer, args.decoder, others, args.audio_ref)
    print(text)
    if args.md:
        args.md.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
