"""The ``avtoolkit`` command: list-components, describe, validate, and the real console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avtoolkit.cli.main import main

SCRIPT = Path(sys.executable).parent / "avtoolkit"


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_components_by_kind_and_pattern(tiny_components, capsys):
    code, out, _ = run_main(capsys, "list-components", "--kind", "encoder", "t_*")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "encoders:"
    assert [ln.split()[0] for ln in lines if not ln.startswith(" " * 10)][1:] == ["t_audio", "t_video"]
    row = next(ln for ln in lines if ln.split()[0] == "t_video")
    assert "avtoolkit" in row and "Tiny video encoder: mean of each frame's pixels" in row
    assert "width=8, in_channels=1, pool='mean'" in out
    assert "t_linear" not in out  # other kinds are not listed


def test_list_components_groups_every_kind(tiny_components, capsys):
    code, out, _ = run_main(capsys, "list-components", "t_*")
    assert code == 0
    for header in ("encoders:", "fusions:", "backends:", "heads:"):
        assert header in out
    assert out.index("encoders:") < out.index("t_video") < out.index("fusions:") < out.index("t_concat")
    assert "input_dim" not in out  # injected sizes are not recipe arguments
    assert "num_classes" in out


def test_list_components_json(tiny_components, capsys):
    code, out, _ = run_main(capsys, "list-components", "--json", "t_c*")
    assert code == 0
    rows = json.loads(out)
    assert {(r["kind"], r["name"]) for r in rows} == {("fusion", "t_concat"), ("head", "t_classifier")}
    head = next(r for r in rows if r["name"] == "t_classifier")
    assert head["source"] == "avtoolkit" and head["broken"] is False
    assert head["arguments"] == [{"name": "num_classes", "type": "int", "default": None, "required": True}]


def test_list_components_lists_the_objectives_the_head_tasks_name(capsys):
    code, out, _ = run_main(capsys, "list-components", "--kind", "objective")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0] == "objectives:"
    assert [ln.split()[0] for ln in lines[1:] if not ln.startswith(" " * 10)] == ["classification", "ctc", "hybrid",
                                                                                        "language_model"]
    assert "top-5 accuracy" in out and "WER and CER" in out and "perplexity" in out


def test_list_components_no_match(capsys):
    code, out, _ = run_main(capsys, "list-components", "--kind", "head", "zz_nothing*")
    assert code == 1 and "no components match 'zz_nothing*' of kind head" in out


def test_describe_prints_doc_types_and_defaults(tiny_components, capsys):
    code, out, _ = run_main(capsys, "describe", "t_video")
    assert code == 0
    assert out.startswith("t_video  (encoder, from avtoolkit)")
    assert "Tiny video encoder" in out
    assert "pool" in out and "Literal['mean', 'max']" in out and "default 'mean'" in out
    code, out, _ = run_main(capsys, "describe", "t_classifier", "--json")
    assert json.loads(out)["arguments"][0]["required"] is True


def test_describe_unknown_name_suggests(tiny_components, capsys):
    code, _, err = run_main(capsys, "describe", "t_vidoe")
    assert code == 2
    assert "no component named 't_vidoe'; did you mean 't_video'" in err
    assert "avtoolkit list-components" in err and "Traceback" not in err


def test_validate_ok_and_error_exit_codes(tiny_components, capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "model:\n"
        "  encoders: {video: {name: t_video, widht: 16}}\n"
        "  backends: [{name: t_linear}]\n"
        "  head: {name: t_classifier, num_classes: 2}\n"
    )
    code, _, err = run_main(capsys, "validate", str(path))
    assert code == 2
    assert "model.encoders.video.widht: unexpected argument (did you mean 'width'?)" in err
    assert f"{path.resolve()}:2" in err
    code, out, _ = run_main(capsys, "validate", str(path), "model.encoders.video={name: t_video, width: 16}")
    assert code == 0 and out.strip() == f"{path}: OK (video:t_video -> t_linear -> t_classifier)"
    code, _, err = run_main(capsys, "validate", str(path), "model.backends.3.hidden=2")
    assert code == 2 and "out of range" in err and "while applying overrides" in err


def test_overrides_may_follow_options(monkeypatch, capsys):
    # `run recipe.yaml --run-dir D key=value` is how people type it; argparse alone would
    # reject the override after the option.
    import avtoolkit.cli.cmd_run as cmd_run

    seen = {}
    monkeypatch.setattr(cmd_run, "run", lambda args: seen.update(vars(args)) or 0)
    assert main(["run", "r.yaml", "--run-dir", "out", "trainer.max_epochs=2", "seed=3"]) == 0
    assert seen["recipe"] == "r.yaml" and seen["run_dir"] == "out"
    assert seen["overrides"] == ["trainer.max_epochs=2", "seed=3"]
    assert main(["run", "r.yaml", "--run-dir", "out", "optim.lr=-1e-3", "trainer.devices=2"]) == 0
    assert seen["overrides"] == ["optim.lr=-1e-3", "trainer.devices=2"]
    with pytest.raises(SystemExit):
        main(["run", "r.yaml", "--run-dir", "out", "seed=1", "--bogus", "stray"])
    assert capsys.readouterr().err.strip().endswith("unrecognized arguments: --bogus stray")


def test_console_script_reports_a_typo_without_a_traceback(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("model:\n  encoders:\n    video: {name: no_such_encoder_xyz}\n  head: {name: no_such_head_xyz}\n")
    proc = subprocess.run([str(SCRIPT), "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"recipe {path} has 2 problems" in proc.stderr
    assert "model.encoders.video.name: unknown encoder 'no_such_encoder_xyz'" in proc.stderr
    assert "(see `avtoolkit list-components --kind encoder`)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from avtoolkit.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'cv2', 'av') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr
    assert "list-components" in proc.stdout and "validate" in proc.stdout
    assert "HEAVY []" in proc.stdout


@pytest.fixture
def broken_plugin():
    """A plugin entry whose import fails, in the global encoder registry for one test."""
    from avtoolkit.registry import registry_for

    encoders = registry_for("encoder")

    def load():
        raise ModuleNotFoundError("No module named 'resnet_extras'")

    encoders.add_lazy("t_broken", load, source="broken-plugin 0.1", spec="resnet_extras:Encoder")
    yield
    encoders.unregister("t_broken")


def test_broken_plugin_is_a_warning_and_a_marked_row(broken_plugin, capsys, monkeypatch):
    from avtoolkit.registry.plugins import PluginWarning

    monkeypatch.delenv("AVTOOLKIT_STRICT_PLUGINS", raising=False)
    with pytest.warns(PluginWarning, match="t_broken' from broken-plugin 0.1 failed to load"):
        code, out, _ = run_main(capsys, "list-components", "--kind", "encoder", "t_*")
    assert code == 0
    assert "[BROKEN] t_broken" in out and "ModuleNotFoundError: No module named 'resnet_extras'" in out


def test_strict_plugins_make_a_broken_plugin_an_error(broken_plugin, capsys, monkeypatch):
    monkeypatch.setenv("AVTOOLKIT_STRICT_PLUGINS", "1")
    code, out, err = run_main(capsys, "list-components", "--kind", "encoder")
    assert code == 2 and "t_broken' from broken-plugin 0.1 failed to load" in err
