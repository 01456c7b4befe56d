"""``avtoolkit summary``: parameters and multiply-accumulates per component of a recipe."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="parameters and MACs per component for one clip")
    p.add_argument("recipe", help="recipe file or shipped recipe name (see `avtoolkit recipes`)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides")
    p.add_argument("--frames", type=positive_int, default=None,
                   help="video frames of the dummy clip (default 29, or the audio's length at 25 fps)")
    p.add_argument("--size", type=positive_int, default=88, help="mouth ROI height and width (default 88)")
    p.add_argument("--audio-frames", type=positive_int, default=500, help="log-mel frames of the dummy audio (default 500)")
    p.set_defaults(handler=summary)


def summary(args: argparse.Namespace) -> int:
    from avtoolkit.models.summary import summarize_recipe

    print(summarize_recipe(args.recipe, args.overrides, args.frames, args.size, args.audio_frames).table())
    return 0
