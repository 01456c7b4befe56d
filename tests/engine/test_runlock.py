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


def test_a_killed_runs_forked_workers_do_not_keep_its_lock(tmp_path: Path):
    # A run that forked a loader worker and then died without releasing (as under kill -9): the
    # worker lives on for a while, and the lock must be free at once all the same.
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import os, sys, time
        from avtoolkit.engine.runlock import RunLock
        RunLock({str(tmp_path)!r}).acquire()
        child = os.fork()
        if child == 0:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1), os.dup2(null, 2)  # so that the caller's read of our output ends now
            time.sleep(30)
            os._exit(0)
        print(child, flush=True)
        os._exit(0)   # no release: the lock file stays, as after a kill
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    child = int(out.stdout.split()[0])
    try:
        os.kill(child, 0)  # the forked worker is still alive
        assert (tmp_path / LOCK_NAME).exists()
        with RunLock(tmp_path):
            assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
    finally:
        os.kill(child, 9)
