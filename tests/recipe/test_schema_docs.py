"""docs/recipes.md lists every key of every settings section with its true default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from avtoolkit.recipe.schema import LIST_SECTIONS, SECTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def _yaml_default(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "required"
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _tables() -> dict[str, dict[str, str]]:
    """``section -> {key: default}`` read from the ``### `section` `` tables of the doc."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in DOC.read_text().splitlines():
        heading = re.fullmatch(r"### `(\w+)`", line)
        if heading:
            section = heading.group(1)
            tables[section] = {}
        row = re.match(r"\| `(\w+)` \| [^|]* \| (`[^`]*`|required) \|", line)
        if row and section is not None:
            tables[section][row.group(1)] = row.group(2).strip("`")
    return tables


@pytest.mark.parametrize("section", [*SECTIONS, *LIST_SECTIONS])
def test_every_schema_key_is_documented_with_its_default(section):
    schema = {**SECTIONS, **LIST_SECTIONS}[section]
    documented = _tables().get(section)
    assert documented is not None, f"docs/recipes.md has no table for `{section}`"
    expected = {f.name: _yaml_default(f) for f in dataclasses.fields(schema)}
    assert documented == expected
