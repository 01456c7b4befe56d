"""``avtoolkit noise-eval``: WER against SNR of a CTC checkpoint, per input combination, noise and decoder."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import output_folder, positive_int


def _snr(text: str) -> float | None:
    from avtoolkit.engine.noise_eval import parse_snr
    from avtoolkit.errors import UsageError

    try:
        return parse_snr(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--snr: ")) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "noise-eval", help="WER and CER of a CTC checkpoint against SNR, per input combination, noise and decoder",
        description="Evaluate a CTC checkpoint on its recipe's test split with noise added to the test audio at "
                    "each SNR, fed audio, video or both, with each decoder; write noise_eval.md, noise_eval.json "
                    "and wer_vs_snr.png into --out. Video-only hears no audio: it is evaluated once.")
    p.add_argument("overrides", nargs="*", help="key.path=value recipe overrides (data paths, data.root ...)")
    p.add_argument("--checkpoint", required=True, help="a run's best.ckpt or last.ckpt (CTC)")
    p.add_argument("--recipe", help="recipe file or shipped name for data and decoding (default: the checkpoint's own)")
    p.add_argument("--modalities", nargs="+", metavar="INPUTS",
                   help="input combinations: audio, video, audio+video (default: each of the model's inputs, "
                        "then all together)")
    p.add_argument("--noise", nargs="+", metavar="TYPE", help="noise types: babble, white (default: both)")
    p.add_argument("--snr", nargs="+", type=_snr, metavar="DB",
                   help="SNRs in dB, 'clean' for none (default: clean 10 5 0 -5 -10)")
    p.add_argument("--decoder", nargs="+", choices=["greedy", "beam", "attention", "joint"],
                   help="decoders to report (default: the recipe's decoding.name; attention and joint: "
                        "hybrid CTC/attention models)")
    p.add_argument("--beam-size", type=positive_int, help="override decoding.beam_size for beam and joint")
    p.add_argument("--lexicon", metavar="FILE",
                   help="lexicon file for beam (lines 'word w o r d |'), or 'grid' for GRID's 51 words")
    p.add_argument("--grammar", metavar="NAME",
                   help="add a beam search restricted to a built-in sentence grammar ('grid': "
                        "command colour preposition letter digit adverb)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the table, JSON and plot")
    p.set_defaults(handler=noise_eval)


def noise_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from avtoolkit.engine.noise_eval import SNRS, noise_eval as run, write_noise_report

    output_folder(args.out, "--out")

    result = run(args.checkpoint, args.recipe, args.overrides, inputs=args.modalities, noises=args.noise,
                 snrs=SNRS if args.snr is None else args.snr, decoders=args.decoder, beam_size=args.beam_size,
                 lexicon=args.lexicon, lexicon_dir=Path(args.out), grammar=args.grammar, progress=True)
    files = write_noise_report(result, args.out)
    print()
    print(result.markdown())
    print(f"wrote {files['markdown']}, {files['json']}, {files['png']}")
    return 0
