"""YAML reading with bounds: a recipe (or an override's value) nested too deep, or too large once its
aliases are expanded, is refused before anything is built from it."""

from __future__ import annotations

from typing import Any

import yaml


#: deepest nesting of mappings and lists a recipe (or an override's value) may have. Real recipes
#: nest five or six levels; 5000 nested brackets would otherwise end in a ``RecursionError``.
MAX_DEPTH = 64
#: most values a recipe may hold once its YAML aliases are expanded. The shipped recipes hold a
#: few hundred; nine levels of nine aliases ("billion laughs") would hold 9**9 and keep every later
#: step (line map, merge, validation) busy for minutes.
MAX_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """A ``SafeLoader`` whose composer refuses nesting deeper than :data:`MAX_DEPTH` (before Python's
    recursion limit is near)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(node: yaml.Node) -> tuple[int, int]:
    """``(values, depth)`` of ``node`` with every alias expanded, counted without expanding them
    (each distinct node once); raises ``ValueError`` past :data:`MAX_NODES` or :data:`MAX_DEPTH`."""
    memo: dict[int, tuple[int, int]] = {}

    def walk(n: yaml.Node, depth: int) -> tuple[int, int]:
        if id(n) in memo:
            size, height = memo[id(n)]
        else:
            if depth > MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} levels deep once its aliases are expanded")
            if isinstance(n, yaml.MappingNode):
                children = [c for pair in n.value for c in pair]
            elif isinstance(n, yaml.SequenceNode):
                children = list(n.value)
            else:
                children = []
            size, height = 1, 0
            for child in children:
                s, h = walk(child, depth + 1)
                size, height = size + s, max(height, h + 1)
                if size > MAX_NODES:
                    break
            memo[id(n)] = (size, height)
        if size > MAX_NODES:
            raise ValueError(f"holds more than {MAX_NODES:,} values once its aliases are expanded "
                             "(nested YAML aliases?)")
        if depth + height > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep once its aliases are expanded")
        return size, height

    return walk(node, 0)


def safe_load_bounded(text: str) -> tuple[Any, yaml.Node | None]:
    """``yaml.safe_load(text)`` and its node tree, refusing a document deeper than :data:`MAX_DEPTH` or
    larger than :data:`MAX_NODES` values with its aliases expanded, before anything is built from it.

    Raises:
        yaml.YAMLError: invalid YAML, or nested too deep while composing.
        ValueError: too large or too deep with its aliases expanded.

    Examples:
        >>> safe_load_bounded("a: &x [1, 2]\\nb: *x")[0]
        {'a': [1, 2], 'b': [1, 2]}
        >>> try:
        ...     safe_load_bounded("[" * 100 + "]" * 100)
        ... except yaml.YAMLError as exc:
        ...     print(exc.problem)
        nested more than 64 levels deep
    """
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _expanded_size(node)
        return loader.construct_document(node), node
    finally:
        loader.dispose()
