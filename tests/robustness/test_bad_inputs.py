"""Every bad input a user can give: one message naming the file or key, exit 2, no traceback,
and nothing already on disk changed.

Each row of ``CASES`` is one mistake, run in-process through ``avtoolkit.cli.main.main``. Grow
the table whenever a new input path appears.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
import pytest
import torch
import yaml

import toy
from avtoolkit.cli.main import main
from avtoolkit.models.checkpoint import read_checkpoint
from avtoolkit.engine.runlock import LOCK_NAME, RunLock

SMALL = {"sizes": [16, 8, 8]}


def snapshot(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``root`` (``dir`` for folders)."""
    return {p.relative_to(root).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


@dataclass
class Case:
    """One mistake: the command line, and what its error must name (``{tmp}`` is the workspace)."""

    id: str
    argv: list[str]
    names: list[str]
    #: paths under the workspace the command may create (a new run directory)
    creates: tuple[str, ...] = ()
    #: a run directory whose lock another run holds meanwhile
    hold_lock: str | None = None


CASES = [
    # -- run directories (the data-loss cases) --------------------------------------------------
    Case("resume-with-another-model",
         ["run", "{tmp}/words/recipe.yaml", "model.encoders.video.dim=8", "--resume", "{tmp}/words"],
         ["{tmp}/words/checkpoints/last.ckpt", "model differs", "encoders.video.proj.weight"]),
    Case("resume-with-other-epochs", ["run", "--resume", "{tmp}/words", "trainer.max_epochs=4"],
         ["{tmp}/words/checkpoints/last.ckpt", "trainer.max_epochs: 1 -> 4", "--run-dir NEW"]),
    Case("resume-with-another-lr", ["run", "--resume", "{tmp}/words", "optim.lr=0.5"],
         ["{tmp}/words/checkpoints/last.ckpt", "optim:"]),
    Case("reuse-a-run-directory", ["run", "{tmp}/recipe.yaml", "--run-dir", "{tmp}/words"],
         ["{tmp}/words", "not empty", "--resume", "--overwrite"]),
    Case("overwrite-a-folder-that-is-no-run", ["run", "{tmp}/recipe.yaml", "--run-dir", "{tmp}/notes", "--overwrite"],
         ["{tmp}/notes", "not a run directory"]),
    # A user's own project folder: their recipe, a README, data; it was deleted and the recipe replaced.
    Case("overwrite-a-users-project-folder",
         ["run", "{tmp}/proj/recipe.yaml", "--run-dir", "{tmp}/proj", "--overwrite"],
         ["{tmp}/proj", "not a run directory", "README.txt", "data/", "recipe.yaml"]),
    # A real run, plus a file and a checkpoint of the user's: --overwrite deletes only a run's files.
    Case("overwrite-a-run-holding-other-files",
         ["run", "{tmp}/recipe.yaml", "--run-dir", "{tmp}/words-plus", "--overwrite"],
         ["{tmp}/words-plus", "no run wrote", "notes.txt", "checkpoints/mine.pt"]),
    Case("overwrite-a-run-whose-recipe-was-edited",
         ["run", "{tmp}/recipe.yaml", "--run-dir", "{tmp}/words-edited", "--overwrite"],
         ["{tmp}/words-edited", "recipe.yaml (not the one the run wrote)"]),
    # runs/<name>-<timestamp> with name ../../../elsewhere/escaped wrote a run outside runs/ (the
    # test runs from {tmp}/cwd/a/b, so the escape would land in {tmp}/cwd/elsewhere).
    Case("recipe-name-escapes-runs", ["run", "{tmp}/recipe.yaml", "name=../../../elsewhere/escaped"],
         ["name", "one folder-name component", "../../../elsewhere/escaped"]),
    Case("zero-epochs", ["run", "{tmp}/recipe.yaml", "trainer.max_epochs=0", "--run-dir", "{tmp}/new"],
         ["trainer.max_epochs", "at least 1, got 0"]),
    Case("resume-and-overwrite", ["run", "--resume", "{tmp}/words", "--overwrite"], ["--resume", "--overwrite"]),
    Case("resume-elsewhere", ["run", "--resume", "{tmp}/words", "--run-dir", "{tmp}/other"], ["--run-dir"]),
    Case("resume-a-folder-without-checkpoint", ["run", "--resume", "{tmp}/notes"], ["{tmp}/notes", "last.ckpt"]),
    Case("resume-while-another-run-writes", ["run", "--resume", "{tmp}/words"],
         ["{tmp}/words", "in use by another avtoolkit run", f"process {os.getpid()}"], hold_lock="words"),
    Case("diverged-run", ["run", "{tmp}/diverge.yaml", "--run-dir", "{tmp}/new"],
         ["diverged at epoch 2", "encoders.video.norm.running_mean", "{tmp}/new/checkpoints/last.ckpt"],
         creates=("new",)),
    Case("learning-rate-overflows-the-weights", ["run", "{tmp}/recipe.yaml", "optim.name=sgd", "optim.lr=1e30",
                                                 "--run-dir", "{tmp}/new"],
         ["diverged at epoch 1 step", "encoders.video.proj.weight", "no checkpoint was written"], creates=("new",)),
    # BatchNorm keeps the weights finite (tanh saturates) but every loss of epoch 2 is NaN.
    Case("learning-rate-makes-every-loss-nan", ["run", "{tmp}/recipe.yaml", "model.encoders.video.norm=true",
                                                "trainer.max_epochs=2", "optim.name=sgd", "optim.lr=1e30",
                                                "--run-dir", "{tmp}/new"],
         ["diverged in epoch 2", "{tmp}/new/checkpoints/last.ckpt (end of epoch 1"], creates=("new",)),
    Case("recipe-error-before-anything-is-written", ["run", "{tmp}/recipe.yaml", "optim.lr=-1", "--run-dir", "{tmp}/new"],
         ["optim", "-1"]),
    # -- checkpoints ----------------------------------------------------------------------------
    Case("text-file-as-checkpoint", ["eval", "--checkpoint", "{tmp}/notes.ckpt"],
         ["{tmp}/notes.ckpt", "not a PyTorch checkpoint"]),
    Case("empty-checkpoint", ["eval", "--checkpoint", "{tmp}/empty.ckpt"], ["{tmp}/empty.ckpt", "empty"]),
    Case("truncated-checkpoint", ["eval", "--checkpoint", "{tmp}/truncated.ckpt"],
         ["{tmp}/truncated.ckpt", "truncated"]),
    Case("onnx-given-to-eval", ["eval", "--checkpoint", "{tmp}/garbage.onnx"], ["{tmp}/garbage.onnx", "ONNX"]),
    Case("word-model-into-transcribe", ["transcribe", "--checkpoint", "{tmp}/words/checkpoints/best.ckpt",
                                        "--audio", "{tmp}/tone.wav"],
         ["{tmp}/words/checkpoints/best.ckpt", "classification", "avtoolkit predict"]),
    Case("ctc-model-into-predict", ["predict", "{tmp}/clip.mp4", "--checkpoint", "{tmp}/ctc/checkpoints/best.ckpt"],
         ["{tmp}/ctc/checkpoints/best.ckpt", "ctc", "avtoolkit transcribe"]),
    Case("garbage-onnx", ["transcribe", "--checkpoint", "{tmp}/garbage.onnx", "--audio", "{tmp}/tone.wav"],
         ["{tmp}/garbage.onnx", "not a readable ONNX model"]),
]


@pytest.fixture
def workspace(tmp_path: Path, words_run: Path, ctc_run: Path) -> Path:
    """Copies of the two runs plus the bad files the cases name."""
    shutil.copytree(words_run, tmp_path / "words")
    shutil.copytree(ctc_run, tmp_path / "ctc")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(toy.words_recipe(trainer={"max_epochs": 1}, data=SMALL)))
    diverging = toy.words_recipe(trainer={"max_epochs": 2, "max_bad_steps": 50}, data=SMALL)
    # Two steps per epoch; from the 4th forward on the encoder's output (so BatchNorm's running
    # statistics) is NaN, as after an overflow. The loss is skipped, the statistics are not.
    diverging["model"]["encoders"]["video"].update(norm=True, nan_after_steps=3)
    (tmp_path / "diverge.yaml").write_text(yaml.safe_dump(diverging))
    (tmp_path / "proj" / "data").mkdir(parents=True)
    shutil.copy(tmp_path / "recipe.yaml", tmp_path / "proj" / "recipe.yaml")
    (tmp_path / "proj" / "README.txt").write_text("my project\n")
    (tmp_path / "proj" / "data" / "notes.txt").write_text("where the clips came from\n")
    shutil.copytree(words_run, tmp_path / "words-plus")
    (tmp_path / "words-plus" / "notes.txt").write_text("what I tried\n")
    shutil.copy(words_run / "checkpoints" / "best.ckpt", tmp_path / "words-plus" / "checkpoints" / "mine.pt")
    shutil.copytree(words_run, tmp_path / "words-edited")
    with (tmp_path / "words-edited" / "recipe.yaml").open("a") as fh:
        fh.write("# my edit\n")
    (tmp_path / "cwd" / "a" / "b").mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("my notes\n")
    (tmp_path / "notes.ckpt").write_text("hello\nthis is text\n")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    whole = (tmp_path / "words/checkpoints/best.ckpt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07 definitely not a protobuf graph")
    with wave.open(str(tmp_path / "tone.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x01" * 1600)
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_one_message_exit_2_and_changes_nothing(case: Case, workspace: Path, toy_components, capsys,
                                                                monkeypatch):
    monkeypatch.chdir(workspace / "cwd" / "a" / "b")  # where a default runs/<name>-<timestamp> would go

    def fill(s: str) -> str:
        return s.replace("{tmp}", str(workspace))

    lock = RunLock(workspace / case.hold_lock) if case.hold_lock else None
    if lock:
        lock.acquire()  # another run writing there: flock conflicts between two open()s, in one process too
    try:
        before = snapshot(workspace)
        code = main([fill(a) for a in case.argv])
        after = snapshot(workspace)
    finally:
        if lock:
            lock.release()
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in out + err
    command = case.argv[0]
    message = err[err.index(f"avtoolkit {command}: error:"):]  # the run's own log lines come first
    for name in case.names:
        assert fill(name) in message, message
    for created in case.creates:
        after = {k: v for k, v in after.items() if k != created and not k.startswith(created + "/")}
    assert after == before


def test_a_diverged_run_keeps_only_finite_checkpoints(workspace: Path, toy_components, capsys):
    assert main(["run", str(workspace / "diverge.yaml"), "--run-dir", str(workspace / "new")]) == 2
    ckpts = workspace / "new" / "checkpoints"
    last = read_checkpoint(ckpts / "last.ckpt")
    assert last["epoch"] == 0  # end of epoch 1: the last finite state
    for name in ("last.ckpt", "best.ckpt"):
        state = read_checkpoint(ckpts / name)["state_dict"]
        assert "model.encoders.video.norm.running_mean" in state
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), name
    assert "diverged at epoch 2" in (workspace / "new" / "training.log").read_text()


def test_overwrite_replaces_a_finished_run(workspace: Path, toy_components, capsys):
    old = read_checkpoint(workspace / "words/checkpoints/last.ckpt")["state_dict"]
    (workspace / "words" / "checkpoints" / ".last.ckpt.abc123.tmp").write_bytes(b"")  # a kill mid-save
    (workspace / "words" / "metrics.csv").write_text("epoch,val/loss\r\n1,9\r\n2,9\r\n")
    assert main(["run", str(workspace / "recipe.yaml"), "trainer.max_epochs=1", "optim.lr=0.05",
                 "--run-dir", str(workspace / "words"), "--overwrite"]) == 0
    assert not (workspace / "words" / "checkpoints" / ".last.ckpt.abc123.tmp").exists()
    assert sorted(p.name for p in (workspace / "words" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (workspace / "words" / LOCK_NAME).exists()
    new = read_checkpoint(workspace / "words/checkpoints/last.ckpt")["state_dict"]
    assert not torch.equal(new["model.head.classifier.weight"], old["model.head.classifier.weight"])
    rows = (workspace / "words" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2  # header and one epoch: no rows of the old run mixed in


def test_cli_error_reaches_stderr_without_a_traceback_in_a_real_process(workspace: Path):
    proc = subprocess.run([sys.executable, "-m", "avtoolkit", "eval", "--checkpoint", str(workspace / "notes.ckpt")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(workspace / "notes.ckpt") in lines[0], proc.stderr


HOLDER = """
import sys, time
from avtoolkit.engine.runlock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_run_directory_locked_by_another_process_is_refused_until_it_dies(workspace: Path, toy_components,
                                                                            capsys):
    run_dir = workspace / "words"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        before = snapshot(run_dir)
        assert main(["run", "--resume", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert f"process {holder.pid}" in err and "in use by another avtoolkit run" in err
        assert snapshot(run_dir) == before
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file stays behind
        holder.wait()
    assert (run_dir / LOCK_NAME).is_file()
    with RunLock(run_dir):  # the kernel dropped the dead process's lock: the stale file is taken over
        pass
    assert not (run_dir / LOCK_NAME).exists()


def test_an_onnx_export_is_found_whatever_its_name(tmp_path: Path):
    from avtoolkit.data.text import CHARACTERS
    from avtoolkit.inference.export import export_onnx
    from avtoolkit.inference.runtime import OnnxModel
    from avtoolkit.inference.transcriber import Transcriber
    from avtoolkit import build_model

    model = build_model("recipes/avasr_audio_only.yaml").eval()
    example = {"audio": torch.randn(1, 60, 40), "audio_lengths": torch.tensor([60])}
    export_onnx(model, example, tmp_path / "m.onnx", list(CHARACTERS))
    for name in ("MODEL.ONNX", "model"):
        shutil.copy(tmp_path / "m.onnx", tmp_path / name)
        assert isinstance(Transcriber.load(tmp_path / name).model, OnnxModel), name
