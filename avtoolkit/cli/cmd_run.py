"""``avtoolkit run`` (train, keep the best checkpoint, test) and ``avtoolkit eval``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train a recipe, keep the best checkpoint, test it",
                       description="Train on the train split, keep the best checkpoint by the recipe's "
                       "monitored validation metric, then evaluate it on the test split.")
    p.add_argument("recipe", nargs="?", help="recipe file or shipped recipe name (optional with --resume: the run's recipe.yaml)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. trainer.max_epochs=2")
    p.add_argument("--run-dir", help="where the run's files go (default runs/<recipe-name>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run already in --run-dir (after every check has passed) and start again")
    p.set_defaults(handler=run)

    e = sub.add_parser("eval", help="evaluate a checkpoint on a split",
                       description="Evaluate a checkpoint; RECIPE may be omitted to use the checkpoint's own recipe.")
    e.add_argument("recipe", nargs="?", help="recipe file or shipped recipe name (default: the one stored in the checkpoint)")
    e.add_argument("overrides", nargs="*", help="key.path=value overrides")
    e.add_argument("--checkpoint", required=True, help="a run's best.ckpt or last.ckpt")
    e.add_argument("--split", default="test", choices=["test", "val"])
    e.add_argument("--save-predictions", metavar="FILE", help="write id, reference, prediction, score (.csv or .jsonl)")
    e.set_defaults(handler=evaluate)


def _split_recipe(args: argparse.Namespace) -> None:
    # argparse cannot tell an omitted RECIPE from a first override: `key=value` is an override.
    if args.recipe is not None and "=" in args.recipe:
        args.overrides = [args.recipe, *args.overrides]
        args.recipe = None


def run(args: argparse.Namespace) -> int:
    _split_recipe(args)
    from avtoolkit.errors import UsageError

    if args.recipe is None and args.resume is None:
        raise UsageError("give a RECIPE (or --resume RUN_DIR)")
    from avtoolkit.engine.run import run_recipe

    # User errors (recipe, checkpoint, run directory, divergence) are AvtoolkitErrors that
    # main() prints; anything else is a bug and keeps its traceback.
    run_recipe(args.recipe, args.overrides, run_dir=args.run_dir, resume=args.resume, overwrite=args.overwrite)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    _split_recipe(args)
    from avtoolkit.engine.evaluate import evaluate as evaluate_checkpoint
    from avtoolkit.engine.rundir import results_table

    metrics = evaluate_checkpoint(args.recipe, args.checkpoint, split=args.split,
                                  save_predictions=args.save_predictions, overrides=args.overrides)
    print(results_table(metrics, f"{args.split} results of {args.checkpoint}"))
    if args.save_predictions:
        print(f"predictions: {args.save_predictions}")
    return 0
