"""A non-editable install runs shipped recipes by name from any directory.

Builds the wheel, installs it (no network, no build isolation) into a fresh virtual
environment outside the checkout whose dependencies come from this environment through
a ``.pth`` file, then runs the installed command from an empty temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("wheel_install")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    # Build from a copy: an in-tree build leaves build/ behind, and a stale build/lib would
    # put deleted modules into the wheel.
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".hypothesis", "runs", "demo_output", ".venv"))
    wheels = root / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
          str(source)], root, env)
    (wheel,) = wheels.glob("avtoolkit-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     root, env).stdout.strip())
    # Dependencies (torch, lightning, pip itself) from this environment, after the venv's own
    # site-packages, so the avtoolkit the venv imports is the wheel's.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # --ignore-installed: never touch the avtoolkit installed in the environment lending the deps.
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
         root, env)
    return venv, env


def test_the_installed_package_is_the_wheels(installed, tmp_path: Path):
    venv, env = installed
    out = _run([str(venv / "bin" / "python"), "-c",
                "import avtoolkit, avtoolkit.recipe.shipped as s; print(avtoolkit.__file__); print(s.shipped_dir())"],
               tmp_path, env).stdout.split()
    package, recipes = Path(out[0]), Path(out[1])
    assert venv in package.parents and REPO not in package.parents
    assert venv in recipes.parents and (recipes / "lrw_effv2t.yaml").is_file()


def test_installed_command_lists_validates_and_writes_demo_data(installed, tmp_path: Path):
    venv, env = installed
    avtoolkit = str(venv / "bin" / "avtoolkit")
    listing = _run([avtoolkit, "recipes"], tmp_path, env).stdout
    names = {line.split()[0] for line in listing.splitlines()[1:] if line.strip() and not line.startswith("run one")}
    assert names == {p.stem for p in (REPO / "recipes").glob("*.yaml")}
    out = _run([avtoolkit, "validate", "lrw_effv2t"], tmp_path, env).stdout
    assert out.startswith("lrw_effv2t: OK")
    out = _run([avtoolkit, "validate", "avasr_concat"], tmp_path, env).stdout  # base: avasr.yaml, installed
    assert out.startswith("avasr_concat: OK")
    _run([avtoolkit, "demo-data", "corpus", "--size", "tiny", "--workers", "1"], tmp_path, env)
    assert list((tmp_path / "corpus" / "lrw").glob("*/train/*.mp4"))
    assert (tmp_path / "corpus" / "sentences" / "train.txt").is_file()
