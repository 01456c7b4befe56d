"""``avtoolkit export``: a CTC checkpoint to ONNX, checked against PyTorch (and its int8 twin, scored)."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import finite_float, nonnegative_float, output_file, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a CTC checkpoint to ONNX and verify it against PyTorch")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--output", required=True, help="the .onnx file to write")
    e.add_argument("--audio", help="example audio for the check (default: the recipe's first test utterance)")
    e.add_argument("--video", help="example video for the check")
    e.add_argument("--atol", type=nonnegative_float, default=1e-4, help="largest allowed log-prob difference")
    q = e.add_argument_group("int8", "also write OUTPUT's int8 twin (OUTPUT.int8.onnx), calibrated on real "
                                     "utterances, and score both graphs so the accuracy cost is stated")
    q.add_argument("--int8", action="store_true", help="write and score the int8 graph too")
    q.add_argument("--calibration", help="manifest to calibrate on (default: the recipe's data.train)")
    q.add_argument("--calibration-size", type=positive_int, default=32,
                   help="utterances to calibrate on, spread over the manifest (default: 32)")
    q.add_argument("--eval", help="manifest to score both graphs on (default: the recipe's data.test)")
    q.add_argument("--eval-size", type=positive_int, default=100, help="first utterances to score (default: 100)")
    q.add_argument("--max-cer-increase", type=finite_float, default=5.0, metavar="POINTS",
                   help="refuse (and delete) the int8 graph if it costs more CER points than this (default: 5)")
    e.set_defaults(handler=export)


def export(args: argparse.Namespace) -> int:
    from avtoolkit.inference.deploy import export_checkpoint

    output_file(args.output, "--output")

    report = export_checkpoint(args.checkpoint, args.output, audio=args.audio, video=args.video, atol=args.atol)
    print(f"wrote {report['output']} (inputs: {', '.join(report['modalities'])}); ONNX Runtime matches PyTorch "
          f"within {report['max_abs_diff']:.1e} on {', '.join(report['example'].values())}")
    if report.get("note"):
        print(f"note: {report['note']}")
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
