"""``avtoolkit list-components``: the registered components of every kind, with their arguments."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any, Iterator


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list-components", help="list registered encoders, fusions, backends, heads, datasets, objectives")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'effnet*'")
    p.add_argument("--kind", help="only this kind (encoder, fusion, backend, head, dataset, objective)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=list_components)


def selected_registries(kind: str | None) -> Iterator[tuple[str, Any]]:
    """Each registry of ``kind`` (every kind when ``None``), loaded, plugins that fail to import warned about."""
    from avtoolkit.registry import KINDS, registry_for
    from avtoolkit.registry.plugins import load_or_warn

    kinds = [kind] if kind else list(KINDS)
    for k in kinds:
        reg = registry_for(k)
        load_or_warn(reg)
        yield k, reg


def list_components(args: argparse.Namespace) -> int:
    from avtoolkit.registry.describe import as_dict, format_args

    rows = [as_dict(e) for _, reg in selected_registries(args.kind) for e in reg if e.name in reg.names(args.pattern)]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no components match '{args.pattern}'" + (f" of kind {args.kind}" if args.kind else ""))
        return 1
    kind = None
    for row in rows:
        if row["kind"] != kind:
            kind = row["kind"]
            print(f"\n{kind}s:")
        mark = "  [BROKEN] " if row["broken"] else "  "
        print(f"{mark}{row['name']:<18} {row['source']:<26} {row['summary'] if not row['broken'] else row['error']}")
        if row["arguments"]:
            print(textwrap.indent(textwrap.fill(format_args(row["arguments"]), 96), " " * 22))
    return 0
