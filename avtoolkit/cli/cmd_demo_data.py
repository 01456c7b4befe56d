"""``avtoolkit demo-data``: write the synthetic audio-visual demo corpus."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import output_folder, positive_int, seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo-data",
        help="write the synthetic audio-visual demo corpus (LRW layout + sentence manifests)",
        description="Writes a deterministic synthetic corpus as real media: "
        "OUT/lrw/WORD/{train,val,test}/WORD_00001.mp4 (+ .txt) and "
        "OUT/sentences/{train,val,test}.txt manifests (audio|video|transcript).",
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium"], help="corpus size (default: small)")
    p.add_argument("--seed", type=seed, default=0, help="corpus seed (same seed, same files)")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    p.set_defaults(handler=demo_data)


def demo_data(args: argparse.Namespace) -> int:
    from avtoolkit.demo import generate_corpus

    output_folder(args.out, "OUT")

    summary = generate_corpus(args.out, size=args.size, seed=args.seed, workers=args.workers, progress=True)
    counts = summary["counts"]
    print(
        f"{args.out}: {sum(counts['lrw'].values())} LRW-layout clips of {len(summary['lrw_words'])} words, "
        f"{sum(counts['sentences'].values())} sentences, speakers "
        + "/".join(f"{len(v)} {k}" for k, v in summary["speakers"].items())
        + f" ({summary['seconds']:.1f} s)"
    )
    return 0
