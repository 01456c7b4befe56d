"""``avtoolkit list-components`` and ``avtoolkit describe``."""

from __future__ import annotations

import argparse
import json
import textwrap


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list-components", help="list registered encoders, fusions, backends, heads, datasets, objectives")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'effnet*'")
    p.add_argument("--kind", help="only this kind (encoder, fusion, backend, head, dataset, objective)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=list_components)

    d = sub.add_parser("describe", help="describe one component in full")
    d.add_argument("name")
    d.add_argument("--kind", help="disambiguate a name used by several kinds")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=describe)


def _selected(kind: str | None):
    from avtoolkit.registry import KINDS, registry_for
    from avtoolkit.registry.plugins import load_or_warn

    kinds = [kind] if kind else list(KINDS)
    for k in kinds:
        reg = registry_for(k)
        load_or_warn(reg)
        yield k, reg


def list_components(args: argparse.Namespace) -> int:
    from avtoolkit.registry.describe import as_dict, format_args

    rows = [as_dict(e) for _, reg in _selected(args.kind) for e in reg if e.name in reg.names(args.pattern)]
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


def describe(args: argparse.Namespace) -> int:
    from avtoolkit.registry import RegistryError
    from avtoolkit.registry.describe import as_dict

    found = []
    for _, reg in _selected(args.kind):
        if args.name in reg:
            found.append(as_dict(reg.entry(args.name), full=True))
    if not found:
        from avtoolkit.registry import KINDS
        import difflib

        names = [n for r in KINDS.values() for n in r.names()]
        close = difflib.get_close_matches(args.name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise RegistryError(f"no component named '{args.name}'{hint} (see `avtoolkit list-components`)")
    if args.json:
        print(json.dumps(found if len(found) > 1 else found[0], indent=2, default=str))
        return 0
    for row in found:
        print(f"{row['name']}  ({row['kind']}, from {row['source']})  [{row['spec']}]")
        if row["broken"]:
            print(f"BROKEN: {row['error']}")
        print()
        print(textwrap.indent(row["doc"] or "(no docstring)", "  "))
        print("\narguments:")
        for a in row["arguments"]:
            default = "required" if a["required"] else f"default {a['default']!r}"
            print(f"  {a['name']:<20} {a['type'] or '-':<22} {default}")
        print()
    return 0
