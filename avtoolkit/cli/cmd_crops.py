"""``avtoolkit crops VIDEO --out sheet.png``: a contact sheet of a clip's aligned mouth crops."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "crops",
        help="contact sheet of a clip's mouth crops with landmarks drawn",
        description="Detects facial landmarks in VIDEO (or reads them with --landmarks), aligns "
                    "each frame to the mean face, cuts the mouth crops and writes a PNG grid of "
                    "them with the landmarks drawn: mouth red, alignment points green.",
    )
    p.add_argument("video", help="the video clip")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--landmarks", help="landmark file (.npy [T, 68, 2] or mpc001 .pkl) instead of detecting")
    p.add_argument("--size", type=positive_int, default=96, help="crop side in pixels (default 96)")
    p.add_argument("--frames", type=positive_int, default=16, help="crops shown (default 16)")
    p.add_argument("--scale", type=positive_float, default=1.7, help="crop width in mouth widths (default 1.7)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from avtoolkit.cli.values import output_file
    from avtoolkit.errors import UsageError
    from avtoolkit.roi.landmark_files import load_landmarks
    from avtoolkit.roi.sheet import clip_contact_sheet

    if args.size < 8 or args.frames < 1 or args.scale <= 0:
        raise UsageError("--size must be >= 8, --frames >= 1 and --scale > 0")
    output_file(args.out, "--out", (".png",))
    landmarks = load_landmarks(args.landmarks) if args.landmarks else None
    try:
        out = clip_contact_sheet(args.video, args.out, size=(args.size, args.size), landmarks=landmarks,
                                 frames=args.frames, scale=args.scale)
    except UsageError as exc:
        if args.landmarks:
            exc.add_note(f"the landmarks are --landmarks {args.landmarks}")
        raise
    print(f"wrote {out}")
    return 0
