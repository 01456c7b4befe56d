"""Checkpoint files: atomic writes, weights-only reads, pretrained loading with named keys."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from avtoolkit.models.checkpoint import (
    CheckpointError,
    compare_state_dicts,
    load_model,
    load_pretrained,
    read_checkpoint,
    save_atomic,
)

WRITER = """
import sys, torch
from avtoolkit.models.checkpoint import save_atomic
target = sys.argv[1]
for version in range(1000):
    save_atomic({"version": version, "weights": torch.full((4_000_000,), float(version))}, target)
    print(version, flush=True)
"""


def test_killing_the_writer_mid_save_leaves_a_loadable_checkpoint(tmp_path: Path):
    target = tmp_path / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # a few complete saves, then kill during the next one
            assert proc.stdout is not None and proc.stdout.readline()
        time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ckpt = read_checkpoint(target)
    assert ckpt["weights"].shape == (4_000_000,)
    assert bool((ckpt["weights"] == float(ckpt["version"])).all())


def test_a_checkpoint_that_needs_code_is_refused(tmp_path: Path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hparams": argparse.Namespace(lr=1)}, path)  # pickles a class
    with pytest.raises(CheckpointError, match="refused: the checkpoint needs arbitrary code"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)


def test_load_model_names_a_checkpoint_without_avtoolkit_metadata(tmp_path: Path):
    path = tmp_path / "plain.pt"
    save_atomic(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="not written by `avtoolkit run`"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_model(tmp_path / "missing.ckpt")


class _Net(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.body = nn.Linear(4, 3)
        self.head = nn.Linear(3, classes)


def test_pretrained_strict_names_every_differing_key(tmp_path: Path):
    source = _Net(5)
    path = tmp_path / "pre.pt"
    save_atomic({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}, path)
    target = _Net(7)
    with pytest.raises(CheckpointError) as err:
        load_pretrained(target, path, strict=True)
    assert "head.weight checkpoint [5, 3] vs model [7, 3]" in str(err.value)
    assert "head.bias" in str(err.value) and "pretrained.strict: false" in str(err.value)


def test_pretrained_non_strict_loads_what_fits_and_reports_the_rest(tmp_path: Path):
    source = _Net(5)
    state = source.state_dict()
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "pre.pt"
    save_atomic(state, path)  # a plain state dict works too
    target = _Net(7)
    fresh_head = target.head.weight.detach().clone()
    diff = load_pretrained(target, path, strict=False)
    assert torch.equal(target.body.weight, source.body.weight)
    assert torch.equal(target.head.weight, fresh_head)
    assert diff.unexpected == ["extra.weight"]
    assert [k for k, _, _ in diff.mismatched] == ["head.bias", "head.weight"]


def test_compare_state_dicts_is_clean_for_the_same_model():
    net = _Net(3)
    assert compare_state_dicts(net.state_dict(), _Net(3).state_dict()).clean
