"""``avtoolkit prepare``: convert a recipe's clips once into its dataset's cache."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="convert a recipe's clips once into its dataset's cache "
                       "(LRW: mouth ROIs; GRID: mouth ROIs and audio)")
    p.add_argument("recipe", help="recipe file or shipped recipe name (see `avtoolkit recipes`)")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides, e.g. data.root=/data/lipread_mp4")
    p.add_argument("--workers", type=positive_int, default=None, help="processes (default: every core)")
    p.set_defaults(handler=prepare)


def prepare(args: argparse.Namespace) -> int:
    from avtoolkit.datasets.lrw.datamodule import build_recipe_roi_cache
    from avtoolkit.recipe import validate_recipe

    recipe = validate_recipe(args.recipe, args.overrides, require_data=True)
    if recipe["data"]["name"] == "lrw":
        report = build_recipe_roi_cache(recipe, workers=args.workers)
        print(report)
        return 1 if report.failed else 0
    # Any other dataset prepares itself the way `avtoolkit run` would, in Lightning's prepare_data.
    from avtoolkit.engine.resolve import build_datamodule

    dm = build_datamodule(recipe)
    if args.workers is not None and hasattr(dm, "prepare_workers"):
        dm.prepare_workers = args.workers
    if not _overrides_prepare(dm):
        print(f"dataset '{recipe['data']['name']}' has nothing to prepare: `avtoolkit run` reads it as it is")
        return 0
    dm.prepare_data()
    report = getattr(dm, "prepare_report", None)
    if report is not None and not (report.prepared or report.failed):
        print(report)  # prepare_data itself prints a report only when it did something
    return 1 if report is not None and report.failed else 0


def _overrides_prepare(dm: object) -> bool:
    """Whether the datamodule's class defines its own ``prepare_data`` (Lightning's does nothing)."""
    from lightning.pytorch import LightningDataModule

    return type(dm).prepare_data is not LightningDataModule.prepare_data
