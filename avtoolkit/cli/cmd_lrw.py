"""``avtoolkit prepare`` (LRW mouth ROIs) and ``avtoolkit predict`` (top-k words for a video)."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="convert a recipe's LRW mp4s once into cached mouth ROIs")
    p.add_argument("recipe", help="recipe file or shipped recipe name (see `avtoolkit recipes`)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. data.root=/data/lipread_mp4")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: every core)")
    p.set_defaults(handler=prepare)
    q = sub.add_parser("predict", help="top-k words for a video, mouth found by face detection")
    q.add_argument("video")
    q.add_argument("--checkpoint", required=True, help="a word-classification run's best.ckpt")
    q.add_argument("--top", type=positive_int, default=5)
    q.add_argument("--crop", choices=["face", "fixed"], default="face",
                   help="face detection (default) or LRW's fixed mouth box for face-centred clips")
    q.add_argument("--device", default="cpu")
    q.set_defaults(handler=predict)


def prepare(args: argparse.Namespace) -> int:
    from avtoolkit.datasets.lrw.datamodule import build_recipe_roi_cache

    report = build_recipe_roi_cache(args.recipe, args.overrides, workers=args.workers)
    print(report)
    return 1 if report.failed else 0


def predict(args: argparse.Namespace) -> int:
    from avtoolkit.inference.words import predict_words

    for word, prob in predict_words(args.checkpoint, args.video, args.top, args.crop, args.device):
        print(f"{word:<20} {prob:.3f}")
    return 0
