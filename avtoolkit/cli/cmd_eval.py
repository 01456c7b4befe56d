"""``avtoolkit eval``: evaluate a checkpoint on a split of its (or another) recipe."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import split_recipe_argument


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="evaluate a checkpoint on a split",
                       description="Evaluate a checkpoint; RECIPE may be omitted to use the checkpoint's own recipe.")
    e.add_argument("recipe", nargs="?", help="recipe file or shipped recipe name (default: the one stored in the checkpoint)")
    e.add_argument("overrides", nargs="*", help="key.path=value overrides")
    e.add_argument("--checkpoint", required=True, help="a run's best.ckpt or last.ckpt")
    e.add_argument("--split", default="test", choices=["test", "val"])
    e.add_argument("--save-predictions", metavar="FILE", help="write id, reference, prediction, score (.csv or .jsonl)")
    e.set_defaults(handler=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    split_recipe_argument(args)
    from avtoolkit.engine.evaluate import evaluate as evaluate_checkpoint
    from avtoolkit.engine.rundir import results_table

    metrics = evaluate_checkpoint(args.recipe, args.checkpoint, split=args.split,
                                  save_predictions=args.save_predictions, overrides=args.overrides)
    print(results_table(metrics, f"{args.split} results of {args.checkpoint}"))
    if args.save_predictions:
        print(f"predictions: {args.save_predictions}")
    return 0
