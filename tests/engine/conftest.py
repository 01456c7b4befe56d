"""Engine test fixtures: the toy datasets and encoder of ``toy.py``, registered per test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # `import toy` here and in subprocesses

import toy  # noqa: E402


@pytest.fixture
def toy_components() -> Iterator[None]:
    with toy.registered():
        yield
