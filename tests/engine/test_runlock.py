"""The run-directory lock: one writer at a time, stale lock files taken over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avtoolkit.engine.runlock import LOCK_NAME, RunLock
from avtoolkit.errors import RunDirectoryError


def test_a_second_lock_is_refused_naming_the_holder_and_released_on_exit(tmp_path: Path):
    with RunLock(tmp_path):
        with pytest.raises(RunDirectoryError) as err:
            RunLock(tmp_path).acquire()
        assert f"process {os.getpid()}" in str(err.value) and str(tmp_path / LOCK_NAME) in str(err.value)
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists()
    with RunLock(tmp_path):  # free again
        pass


def test_a_lock_file_nobody_holds_is_taken_over(tmp_path: Path):
    (tmp_path / LOCK_NAME).write_text("999999\n")  # left by a killed run: no process holds its flock
    with RunLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists()
