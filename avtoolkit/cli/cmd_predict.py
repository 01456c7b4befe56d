"""``avtoolkit predict``: the top-k words of a word-classification checkpoint for one video."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("predict", help="top-k words for a video, mouth found by face detection")
    q.add_argument("video")
    q.add_argument("--checkpoint", required=True, help="a word-classification run's best.ckpt")
    q.add_argument("--top", type=positive_int, default=5)
    q.add_argument("--crop", choices=["face", "fixed"], default="face",
                   help="face detection (default) or LRW's fixed mouth box for face-centred clips")
    q.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    q.set_defaults(handler=predict)


def predict(args: argparse.Namespace) -> int:
    from avtoolkit.hardware import check_device
    from avtoolkit.inference.word_prediction import predict_words

    check_device(args.device)

    for word, prob in predict_words(args.checkpoint, args.video, args.top, args.crop, args.device):
        print(f"{word:<20} {prob:.3f}")
    return 0
