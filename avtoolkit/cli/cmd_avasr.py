"""``avtoolkit transcribe`` and ``avtoolkit export``: AV-ASR inference and ONNX export."""

from __future__ import annotations

import argparse
import json
import sys


from avtoolkit.cli.values import positive_int as _positive_int


def register(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("transcribe", help="speech to text from audio and/or video with a trained CTC model",
                       description="Transcribe one utterance (--audio/--video) or a whole manifest "
                                   "(--manifest, writes predictions and prints WER/CER).")
    t.add_argument("--checkpoint", required=True, help="a run's best.ckpt, or an .onnx file from `avtoolkit export`")
    t.add_argument("--audio", help="audio or video file whose audio track to use")
    t.add_argument("--video", help="video file (mouth found by face detection) or .npy mouth crops")
    t.add_argument("--reference", help="expected transcript: adds WER and CER")
    t.add_argument("--manifest", help="audio_path|video_path|transcript file to transcribe and score")
    t.add_argument("--output", help="predictions file for --manifest (.jsonl, .csv or .tsv)")
    t.add_argument("--modalities", nargs="+", choices=["audio", "video"], help="with --manifest: inputs to use")
    t.add_argument("--decoder", choices=["greedy", "beam"], help="override the recipe's decoding.name")
    t.add_argument("--beam-size", type=int, help="override decoding.beam_size")
    t.add_argument("--lexicon", help="lexicon file for beam search")
    t.add_argument("--lm", help="KenLM language model for beam search")
    t.add_argument("--json", action="store_true", help="print the result as JSON")
    t.set_defaults(handler=transcribe)

    e = sub.add_parser("export", help="export a CTC checkpoint to ONNX and verify it against PyTorch")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--output", required=True, help="the .onnx file to write")
    e.add_argument("--audio", help="example audio for the check (default: the recipe's first test utterance)")
    e.add_argument("--video", help="example video for the check")
    e.add_argument("--atol", type=float, default=1e-4, help="largest allowed log-prob difference")
    q = e.add_argument_group("int8", "also write OUTPUT's int8 twin (OUTPUT.int8.onnx), calibrated on real "
                                     "utterances, and score both graphs so the accuracy cost is stated")
    q.add_argument("--int8", action="store_true", help="write and score the int8 graph too")
    q.add_argument("--calibration", help="manifest to calibrate on (default: the recipe's data.train)")
    q.add_argument("--calibration-size", type=_positive_int, default=32,
                   help="utterances to calibrate on, spread over the manifest (default: 32)")
    q.add_argument("--eval", help="manifest to score both graphs on (default: the recipe's data.test)")
    q.add_argument("--eval-size", type=_positive_int, default=100, help="first utterances to score (default: 100)")
    q.add_argument("--max-cer-increase", type=float, default=5.0, metavar="POINTS",
                   help="refuse (and delete) the int8 graph if it costs more CER points than this (default: 5)")
    e.set_defaults(handler=export)


def transcribe(args: argparse.Namespace) -> int:
    from avtoolkit.inference.transcriber import Transcriber, check_output, check_reference

    decoding = {k: v for k, v in {"name": args.decoder, "beam_size": args.beam_size, "lexicon": args.lexicon,
                                  "lm": args.lm}.items() if v is not None}
    if args.manifest:
        if args.audio or args.video:
            print("avtoolkit transcribe: give --manifest or --audio/--video, not both", file=sys.stderr)
            return 2
        if args.output:
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
    asr = Transcriber.load(args.checkpoint, decoding=decoding)
    result = asr.transcribe(audio=args.audio, video=args.video, reference=args.reference)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(result.transcript)
        extra = f"  WER {result.wer:.2%}  CER {result.cer:.2%}" if result.wer is not None else ""
        print(f"({'+'.join(result.modalities)}, {result.latency_ms:.1f} ms){extra}")
    return 0


def export(args: argparse.Namespace) -> int:
    from avtoolkit.inference.deploy import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.output, audio=args.audio, video=args.video, atol=args.atol)
    print(f"wrote {report['output']} (inputs: {', '.join(report['modalities'])}); ONNX Runtime matches PyTorch "
          f"within {report['max_abs_diff']:.1e} on {', '.join(report['example'].values())}")
    if args.int8:
        from avtoolkit.inference.deploy import quantize_export
        from avtoolkit.inference.quantize import int8_path

        q = quantize_export(args.output, int8_path(args.output), calibration_manifest=args.calibration,
                            eval_manifest=args.eval, calibration_size=args.calibration_size,
                            eval_size=args.eval_size, max_cer_increase=args.max_cer_increase / 100)
        from avtoolkit.inference.quantize import describe_scheme

        print(f"wrote {q['output']} (int8, calibrated on {q['calibration']['utterances']} utterances of "
              f"{q['calibration']['manifest']})")
        print(f"  quantisation: {describe_scheme(q['scheme'])}")
        print("  (7-bit weights: the integer sums are exact on every x86-64 CPU, VNNI or not, so the figures "
              "below hold on all of them)" if q["scheme"].get("saturation_free") else
              "  WARNING: exact only on CPUs with VNNI; AVX2-only CPUs may compute it far off")
        print(f"scored on the first {q['utterances']} utterances of {q['eval_manifest']} "
              "(forward time of one utterance, without decoding):")
        if q["scored_on_calibration_data"]:
            print("  note: scored on the same file it was calibrated on, so the int8 cost shown is optimistic; "
                  "give held-out data with --eval")
        for name in ("fp32", "int8"):
            r = q[name]
            print(f"  {name}: WER {r['wer']:.2%}  CER {r['cer']:.2%}  {r['latency_ms']:.1f} ms")
        print(f"  int8 costs {100 * (q['int8']['wer'] - q['fp32']['wer']):+.2f} WER points and runs "
              f"{q['fp32']['latency_ms'] / q['int8']['latency_ms']:.2f}x as fast")
    return 0
