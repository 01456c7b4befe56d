"""``avtoolkit describe``: one registered component in full (docstring, arguments, source)."""

from __future__ import annotations

import argparse
import json
import textwrap

from avtoolkit.cli.cmd_list_components import selected_registries


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("describe", help="describe one component in full")
    d.add_argument("name")
    d.add_argument("--kind", help="disambiguate a name used by several kinds")
    d.add_argument("--json", action="store_true")
    d.set_defaults(handler=describe)


def describe(args: argparse.Namespace) -> int:
    from avtoolkit.registry import RegistryError
    from avtoolkit.registry.describe import as_dict

    found = []
    for _, reg in selected_registries(args.kind):
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
