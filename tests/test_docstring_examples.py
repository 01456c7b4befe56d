"""Every ``Examples:`` block in avtoolkit's docstrings runs and prints what it says.

Docstring examples are the first code a user copies; an example that has drifted from the
code is a bug. Each module with examples is one test case.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import avtoolkit


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(avtoolkit.__path__, prefix="avtoolkit."):
        if info.name.endswith("__main__"):  # importing it would run the command line
            continue
        module = importlib.import_module(info.name)
        if any(test.examples for test in doctest.DocTestFinder().find(module)):
            names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_the_examples_are_found() -> None:
    # Guards the finder itself: if it silently found nothing, every case below would vanish.
    assert len(MODULES) >= 20, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (output above)"
