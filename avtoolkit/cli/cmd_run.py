"""``avtoolkit run`` (train, keep the best checkpoint, test) and ``avtoolkit eval``."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train a recipe, keep the best checkpoint, test it",
                       description="Train on the train split, keep the best checkpoint by the recipe's "
                       "monitored validation metric, then evaluate it on the test split.")
    p.add_argument("recipe", nargs="?", help="recipe file or shipped recipe name (optional with --resume: the run's recipe.yaml)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. trainer.max_epochs=2")
    p.add_argument("--run-dir", help="where the run's files go (default runs/<recipe-name>-<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from RUN_DIR/checkpoints/last.ckpt")
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


def _user_error(command: str, exc: Exception) -> int:
    print(f"avtoolkit {command}: error: {exc}", file=sys.stderr)
    for note in getattr(exc, "__notes__", []):
        print(f"  {note}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    _split_recipe(args)
    if args.recipe is None and args.resume is None:
        return _user_error("run", ValueError("give a RECIPE (or --resume RUN_DIR)"))
    from avtoolkit.engine.checkpoint import CheckpointError
    from avtoolkit.engine.run import run_recipe
    from avtoolkit.engine.task import TrainingDivergedError

    try:
        run_recipe(args.recipe, args.overrides, run_dir=args.run_dir, resume=args.resume)
    except (CheckpointError, TrainingDivergedError, ValueError) as exc:
        from avtoolkit.recipe import RecipeError

        if isinstance(exc, RecipeError):
            raise  # main() prints recipe errors
        return _user_error("run", exc)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    _split_recipe(args)
    from avtoolkit.engine.checkpoint import CheckpointError
    from avtoolkit.engine.evaluate import evaluate as evaluate_checkpoint
    from avtoolkit.engine.rundir import results_table

    try:
        metrics = evaluate_checkpoint(args.recipe, args.checkpoint, split=args.split,
                                      save_predictions=args.save_predictions, overrides=args.overrides)
    except CheckpointError as exc:
        return _user_error("eval", exc)
    print(results_table(metrics, f"{args.split} results of {args.checkpoint}"))
    if args.save_predictions:
        print(f"predictions: {args.save_predictions}")
    return 0
