"""``avtoolkit demo``: the main job (demo corpus, both demo recipes trained and tested, report)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: demo corpus, train+test both demo recipes, noise curves, report",
    )
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--size", default="small", choices=["tiny", "small", "medium"], help="corpus size (default: small)")
    p.add_argument("--seed", type=int, default=0, help="corpus seed")
    p.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    from avtoolkit.demo import run_demo

    run_demo(args.out, size=args.size, seed=args.seed)
    return 0
