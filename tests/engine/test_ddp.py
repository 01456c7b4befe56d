"""Two-process DDP on CPU (gloo): the run finishes and its test metrics match one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import toy
from avtoolkit.engine import evaluate

SCRIPT = """
import json, sys
sys.path.insert(0, {toy_dir!r})
import toy
from avtoolkit.engine import run_recipe
with toy.registered():
    metrics = run_recipe(toy.words_recipe(trainer={{"devices": 2, "strategy": "ddp", "max_epochs": 2}},
                                          data={{"noise": 3.0}}), run_dir=sys.argv[1])
print("RESULT", json.dumps(metrics), flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_process_ddp_matches_a_single_process_evaluation(tmp_path: Path, toy_components):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT.format(toy_dir=str(Path(toy.__file__).parent)))
    run_dir = tmp_path / "ddp"
    env = {k: v for k, v in os.environ.items() if k not in ("AVTOOLKIT_RUN_DIR", "LOCAL_RANK", "WORLD_SIZE", "RANK")}
    proc = subprocess.run([sys.executable, str(script), str(run_dir)], capture_output=True, text=True,
                          timeout=280, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 2  # both processes finished
    assert results[0] == results[1]
    ddp_metrics = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert ddp_metrics == pytest.approx(results[0])
    # 48 training examples, batch 8, 2 processes: 3 optimizer steps per epoch (distributed sampler).
    assert json.loads((run_dir / "results.json").read_text())["global_step"] == 6
    single = evaluate(None, run_dir / "checkpoints" / "best.ckpt")
    assert single == pytest.approx(ddp_metrics, rel=1e-5)
    assert list((run_dir / "checkpoints").iterdir()) and "epoch 2/2" in (run_dir / "training.log").read_text()
