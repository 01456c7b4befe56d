"""``avtoolkit run``: train a recipe, keep the best checkpoint, test it."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import split_recipe_argument


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


def run(args: argparse.Namespace) -> int:
    split_recipe_argument(args)
    from avtoolkit.errors import UsageError

    if args.recipe is None and args.resume is None:
        raise UsageError("give a RECIPE (or --resume RUN_DIR)")
    from avtoolkit.engine.run import run_recipe

    # User errors (recipe, checkpoint, run directory, divergence) are AvtoolkitErrors that
    # main() prints; anything else is a bug and keeps its traceback.
    run_recipe(args.recipe, args.overrides, run_dir=args.run_dir, resume=args.resume, overwrite=args.overwrite)
    return 0
