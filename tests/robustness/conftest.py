"""Fixtures of the bad-input suite: two finished toy runs to poke at."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))  # the engine tests' toy components

import toy  # noqa: E402

from avtoolkit.engine import run_recipe  # noqa: E402

#: small enough that a run takes a few seconds on a loaded CPU.
SMALL = {"sizes": [16, 8, 8]}


@pytest.fixture
def toy_components() -> Iterator[None]:
    with toy.registered():
        yield


@pytest.fixture(scope="session")
def words_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch word-classification run (cases copy it before touching it)."""
    run_dir = tmp_path_factory.mktemp("robust") / "words"
    with toy.registered():
        run_recipe(toy.words_recipe(trainer={"max_epochs": 1}, data=SMALL), run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="session")
def ctc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch CTC run."""
    run_dir = tmp_path_factory.mktemp("robust") / "ctc"
    with toy.registered():
        run_recipe(toy.spelling_recipe(trainer={"max_epochs": 1}, data=SMALL), run_dir=run_dir)
    return run_dir
