"""``avtoolkit transcribe``: speech to text from audio and/or video with a trained CTC model."""

from __future__ import annotations

import argparse
import json
import sys

from avtoolkit.cli.values import nonnegative_float, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("transcribe", help="speech to text from audio and/or video with a trained CTC model",
                       description="Transcribe one utterance (--audio/--video), a whole manifest "
                                   "(--manifest, writes predictions and prints WER/CER), or a recording of any "
                                   "length (MEDIA: cut into utterances, written as --srt/--vtt/--json subtitles).")
    t.add_argument("media", nargs="?", help="a video or audio file of any length: cut into utterances by voice "
                                            "activity (or face tracks for silent video) and transcribed segment "
                                            "by segment")
    t.add_argument("--checkpoint", required=True, help="a run's best.ckpt, or an .onnx file from `avtoolkit export`")
    t.add_argument("--audio", help="audio or video file whose audio track to use")
    t.add_argument("--video", help="video file or .npy mouth crops; a video's mouth is cut as the checkpoint's "
                                   "recipe says (data.crop_method: 'fixed' cuts a fixed box of the frame and "
                                   "looks for no face; 'face' and 'landmarks' detect one)")
    t.add_argument("--reference", help="expected transcript: adds WER and CER")
    t.add_argument("--manifest", help="audio_path|video_path|transcript file to transcribe and score")
    t.add_argument("--output", help="predictions file for --manifest (.jsonl, .csv or .tsv)")
    t.add_argument("--modalities", nargs="+", choices=["audio", "video"],
                   help="inputs to use (of --manifest's, or of --audio/--video: each must then be given)")
    t.add_argument("--decoder", choices=["greedy", "beam", "attention", "joint"],
                   help="override the recipe's decoding.name (attention, joint: hybrid CTC/attention models)")
    t.add_argument("--beam-size", type=positive_int, help="override decoding.beam_size")
    t.add_argument("--lexicon", help="lexicon file for beam search")
    t.add_argument("--lm", help="language model: KenLM for CTC beam search; a character LM .pt "
                                "(avtoolkit.models.lm) for joint search")
    t.add_argument("--lm-weight", type=nonnegative_float, help="override decoding.lm_weight (LM fusion weight)")
    t.add_argument("--json", nargs="?", const=True, default=None, metavar="FILE",
                   help="print the result as JSON; with MEDIA, FILE writes the timed segments as JSON there")
    t.add_argument("--srt", metavar="FILE", help="with MEDIA: write SubRip subtitles")
    t.add_argument("--vtt", metavar="FILE", help="with MEDIA: write WebVTT subtitles")
    t.add_argument("--max-segment", type=positive_float, default=10.0, metavar="S",
                   help="with MEDIA: longest segment in seconds; longer speech or face tracks become "
                        "overlapping windows (default 10)")
    t.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps (PyTorch checkpoints)")
    t.add_argument("--no-progress", action="store_true", help="with MEDIA: no progress bar on stderr")
    t.set_defaults(handler=transcribe)


def transcribe(args: argparse.Namespace) -> int:
    from avtoolkit.inference.transcriber import Transcriber, check_output, check_reference

    decoding = {k: v for k, v in {"name": args.decoder, "beam_size": args.beam_size, "lexicon": args.lexicon,
                                  "lm": args.lm, "lm_weight": args.lm_weight}.items() if v is not None}
    if args.media:
        return _transcribe_recording(args, decoding)
    if args.srt or args.vtt or isinstance(args.json, str):
        print("avtoolkit transcribe: --srt, --vtt and --json FILE need a MEDIA file to subtitle", file=sys.stderr)
        return 2
    if args.manifest:
        if args.audio or args.video:
            print("avtoolkit transcribe: give --manifest or --audio/--video, not both", file=sys.stderr)
            return 2
        if args.output:
            from avtoolkit.cli.values import output_file

            output_file(args.output, "--output")
            check_output(args.output)
        asr = Transcriber.load(args.checkpoint, decoding=decoding)
        summary = asr.transcribe_manifest(args.manifest, args.output, modalities=args.modalities)
        if args.json:
            print(json.dumps(summary))
        else:
            print(f"{summary['utterances']} utterances ({'+'.join(summary['modalities'])}): "
                  f"WER {summary['wer']:.2%}  CER {summary['cer']:.2%}"
                  + (f"  -> {summary['output']}" if summary["output"] else ""))
        return 0
    if not (args.audio or args.video):
        print("avtoolkit transcribe: give --audio and/or --video, or --manifest", file=sys.stderr)
        return 2
    if args.reference is not None:
        check_reference(args.reference, "--reference")
    audio, video = args.audio, args.video
    if args.modalities:
        from avtoolkit.errors import UsageError

        for modality in args.modalities:
            if getattr(args, modality) is None:
                raise UsageError(f"--modalities {' '.join(args.modalities)}: give --{modality} too")
        audio = audio if "audio" in args.modalities else None
        video = video if "video" in args.modalities else None
    asr = Transcriber.load(args.checkpoint, decoding=decoding)
    if video is not None and not str(video).lower().endswith((".npy", ".npz")) and asr.crop_method == "fixed":
        import logging

        logging.getLogger("avtoolkit.transcribe").warning(
            "%s: the checkpoint's recipe cuts the mouth as a fixed box of the frame (data.crop_method: fixed) "
            "and looks for no face: the video must be framed like its training clips", video)
    result = asr.transcribe(audio=audio, video=video, reference=args.reference)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(result.transcript)
        extra = f"  WER {result.wer:.2%}  CER {result.cer:.2%}" if result.wer is not None else ""
        print(f"({'+'.join(result.modalities)}, {result.latency_ms:.1f} ms){extra}")
    return 0


def _transcribe_recording(args: argparse.Namespace, decoding: dict) -> int:
    from pathlib import Path

    from avtoolkit.cli.values import output_file
    from avtoolkit.data.media import MediaError
    from avtoolkit.hardware import check_device
    from avtoolkit.inference.long_video import transcribe_recording, write_subtitles
    from avtoolkit.inference.subtitles import to_json
    from avtoolkit.inference.transcriber import Transcriber

    if args.audio or args.video or args.manifest:
        print("avtoolkit transcribe: give MEDIA or --audio/--video/--manifest, not both", file=sys.stderr)
        return 2
    if not Path(args.media).is_file():
        raise MediaError(args.media, "file does not exist")
    outputs = {fmt: output_file(path, f"--{fmt}", (f".{fmt}",))
               for fmt, path in (("srt", args.srt), ("vtt", args.vtt),
                                 ("json", args.json if isinstance(args.json, str) else None)) if path}
    device = check_device(args.device)
    asr = Transcriber.load(args.checkpoint, decoding=decoding,
                           **({"device": device} if not str(args.checkpoint).lower().endswith(".onnx") else {}))
    cues = transcribe_recording(asr, args.media, max_s=args.max_segment, progress=not args.no_progress,
                                modalities=args.modalities)
    info = {"media": str(args.media), "checkpoint": str(args.checkpoint), "model_modalities": asr.modalities}
    # Every file is written only after the whole recording is transcribed: a failure leaves none.
    for fmt, path in outputs.items():
        write_subtitles(cues, path, fmt, **info)
    if args.json is True:
        print(to_json(cues, **info), end="")
    elif not outputs:
        for cue in cues:
            print(f"{cue.start:8.2f} {cue.end:8.2f}  [{'+'.join(cue.modalities)}] {cue.text}")
    else:
        print(f"{len(cues)} segments -> {', '.join(str(p) for p in outputs.values())}")
    return 0
