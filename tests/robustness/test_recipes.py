"""Recipe mistakes ``avtoolkit validate`` must catch (so ``run`` never starts on them): a ``base``
that is a folder or empty, counts below 1, a non-positive learning rate, a key given twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from avtoolkit.cli.main import main

GOOD = """\
name: tiny
model:
  encoders:
    audio: {name: audio_cnn, channels: [4, 4, 4], hidden_dim: 16}
  backends:
    - {name: tcn, channels: 16, layers: 1}
  head: {name: ctc}
optim:
  lr: 0.001
"""

# (id, file contents by name, argv after the command, what the message must name)
CASES = [
    ("base-is-a-folder", {"r.yaml": "base: parts\n" + GOOD}, [], ["r.yaml:1", "base", "folder"]),
    ("base-is-empty-file", {"r.yaml": "base: empty.yaml\n" + GOOD, "empty.yaml": ""}, [],
     ["r.yaml:1", "empty.yaml", "is empty"]),
    ("base-without-value", {"r.yaml": "base:\n" + GOOD}, [], ["r.yaml:1", "base", "is empty"]),
    ("layers-minus-one", {"r.yaml": GOOD.replace("layers: 1", "layers: -1")}, [],
     ["r.yaml:6", "model.backends.0.layers", "at least 1", "-1"]),
    ("zero-channels-in-a-list", {"r.yaml": GOOD.replace("[4, 4, 4]", "[4, 0, 4]")}, [],
     ["r.yaml:4", "model.encoders.audio.channels", "[4, 0, 4]"]),
    ("negative-size-override", {"r.yaml": GOOD}, ["model.encoders.audio.hidden_dim=-16"],
     ["model.encoders.audio.hidden_dim", "-16"]),
    ("zero-learning-rate", {"r.yaml": GOOD.replace("lr: 0.001", "lr: 0")}, [],
     ["r.yaml:9", "optim.lr", "greater than 0"]),
    ("negative-learning-rate-override", {"r.yaml": GOOD}, ["optim.lr=-0.1"], ["optim.lr", "-0.1"]),
    ("duplicate-key", {"r.yaml": GOOD.replace("  lr: 0.001\n", "  lr: 0.001\n  lr: 0.1\n")}, [],
     ["r.yaml:10", "optim.lr", "given twice (first on line 9)"]),
    ("duplicate-section", {"r.yaml": GOOD + "optim:\n  lr: 0.5\n"}, [],
     ["r.yaml:10", "optim", "first on line 8"]),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("files,extra,names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_recipe_mistakes_are_refused_before_anything_runs(command, files, extra, names, tmp_path: Path, capsys):
    (tmp_path / "parts").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    argv = [command, str(tmp_path / "r.yaml"), *extra]
    if command == "run":
        argv += ["--run-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in names:
        assert name in err, err
    assert not (tmp_path / "run").exists()


def test_the_good_recipe_validates(tmp_path: Path, capsys):
    (tmp_path / "r.yaml").write_text(GOOD)
    assert main(["validate", str(tmp_path / "r.yaml")]) == 0
