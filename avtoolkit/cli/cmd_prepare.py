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
    p.add_argument("--format", dest="store_format", choices=("npz", "shards"), default=None,
                   help="npz: one cached file per clip; shards: tar shards with an index, streamed to many GPUs "
                   "(default: the recipe's data.store_format, else npz)")
    p.add_argument("--part", type=_part, default=None, metavar="I/N",
                   help="shards: prepare part I of N (one machine or array job each); then run once with --index")
    p.add_argument("--index", action="store_true", help="shards: write index.json from the finished parts' shards")
    p.set_defaults(handler=prepare)


def _part(text: str) -> tuple[int, int]:
    from avtoolkit.store import parse_part

    try:
        return parse_part(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--part {text!r}: ")) from None


def prepare(args: argparse.Namespace) -> int:
    from avtoolkit.datasets.lrw.datamodule import build_recipe_roi_cache
    from avtoolkit.recipe import validate_recipe

    from avtoolkit.errors import UsageError

    recipe = validate_recipe(args.recipe, args.overrides, require_data=True)
    store_format = args.store_format or recipe["data"].get("store_format", "npz")
    part = args.part or (1, 1)
    if store_format != "shards" and (args.part or args.index):
        raise UsageError("--part and --index prepare shards: add --format shards (or data.store_format=shards)")
    if args.part and args.index:
        raise UsageError("--part I/N prepares one part; --index runs once after every part: give one of them")
    if recipe["data"]["name"] == "lrw":
        report = build_recipe_roi_cache(recipe, workers=args.workers, store_format=store_format, part=part,
                                        index_only=args.index)
        print(report)
        return 1 if report.failed else 0
    # Any other dataset prepares itself the way `avtoolkit run` would, in Lightning's prepare_data.
    from avtoolkit.engine.resolve import build_datamodule

    dm = build_datamodule(recipe)
    if args.workers is not None and hasattr(dm, "prepare_workers"):
        dm.prepare_workers = args.workers
    if store_format == "shards":
        if not hasattr(dm, "store_format"):
            raise UsageError(f"dataset '{recipe['data']['name']}' does not prepare shards (data.store_format)")
        dm.store_format, dm.prepare_part, dm.prepare_index_only = "shards", part, args.index
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
