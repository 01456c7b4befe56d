"""Entry point of the ``avtoolkit`` command.

Each ``avtoolkit/cli/cmd_*.py`` module adds its one subcommand through ``register(subparsers)``
and keeps heavy imports inside its handlers so ``avtoolkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import avtoolkit


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avtoolkit",
        description="Lipreading and audio-visual speech recognition from YAML recipes.",
    )
    parser.add_argument("--version", action="version", version=f"avtoolkit {avtoolkit.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import avtoolkit.cli as cli_pkg

    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"avtoolkit.cli.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling a positional list at the first option, so in
    # `avtoolkit run recipe.yaml --run-dir D trainer.max_epochs=2` the override lands in
    # `extra`. Overrides may come anywhere; anything else left over is still an error.
    if hasattr(args, "overrides"):
        overrides = [e for e in extra if "=" in e and not e.startswith("-")]
        args.overrides = [*(args.overrides or []), *overrides]
        extra = [e for e in extra if e not in overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from avtoolkit.errors import AvtoolkitError

    try:
        return int(args.handler(args) or 0)
    except (AvtoolkitError, FileNotFoundError) as exc:
        # User errors: the message is the whole story, a traceback would bury it.
        print(f"avtoolkit {args.command}: error: {exc}", file=sys.stderr)
        for note in getattr(exc, "__notes__", []):
            print(f"  {note}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
