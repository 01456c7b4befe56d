"""``avtoolkit label``: machine transcripts of an untranscribed corpus (VoxCeleb2) with a trained model."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("label", help="transcribe VoxCeleb2 with a trained audio or AV model into a labels file",
                       description="Write a labels file (clip key<TAB>transcript, with a header naming the model: "
                                   "checkpoint path and SHA-256, recipe, decoder) that the voxceleb2 dataset reads "
                                   "as data.labels. Resumes from <output>.partial after an interruption.")
    p.add_argument("root", help="the VoxCeleb2 folder holding dev/mp4/id<N>/... and/or test/mp4/...")
    p.add_argument("--checkpoint", required=True, help="a run's best.ckpt (CTC or hybrid), or its .onnx export")
    p.add_argument("--output", required=True, help="the labels file to write (e.g. vox2_labels.tsv)")
    p.add_argument("--subsets", nargs="+", choices=["dev", "test"], default=["dev", "test"], help="subsets to label")
    p.add_argument("--modalities", nargs="+", choices=["audio", "video"],
                   help="inputs to use (default: all the model reads; audio alone is what auto_avsr labels with)")
    p.add_argument("--decoder", choices=["greedy", "beam", "attention", "joint"], help="override decoding.name")
    p.add_argument("--beam-size", type=positive_int, help="override decoding.beam_size")
    p.add_argument("--batch-size", type=positive_int, default=8, help="clips per forward pass")
    p.add_argument("--max-clips", type=positive_int, help="label only the first N clips (a trial run)")
    p.set_defaults(handler=label)


def label(args: argparse.Namespace) -> int:
    from avtoolkit.cli.values import output_file
    from avtoolkit.datasets.voxceleb2.layout import find_videos
    from avtoolkit.inference.labelling import label_clips

    output_file(args.output, "--output")
    clips = find_videos(args.root, args.subsets)
    if args.max_clips:
        clips = clips[: args.max_clips]
    decoding = {k: v for k, v in {"name": args.decoder, "beam_size": args.beam_size}.items() if v is not None}
    summary = label_clips(args.checkpoint, clips, args.output, decoding, args.modalities, args.batch_size)
    print(summary)
    return 0
