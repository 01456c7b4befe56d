"""The example plugin in plugins/avtoolkit-resnet: the encoder itself, and end to end
through pip, entry points, ``avtoolkit list-components`` and a recipe."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "avtoolkit-resnet"
GRID_ROI = ROOT.parent / "shared" / "data" / "grid" / "mouth_roi" / "bbaf2n"
SCRIPT = Path(sys.executable).parent / "avtoolkit"


@pytest.fixture
def encoder_cls(monkeypatch):
    """The plugin's encoder class imported from its source tree (no install needed)."""
    monkeypatch.syspath_prepend(str(PLUGIN / "src"))
    from avtoolkit_resnet.encoder import ResNet18Frontend

    return ResNet18Frontend


def test_encoder_contract_and_size(encoder_cls):
    from avtoolkit.models.contract import Encoder

    torch.manual_seed(0)
    enc = encoder_cls(relu_type="relu").eval()
    assert isinstance(enc, Encoder) and enc.modality == "video"
    assert enc.output_dim == 512 and enc.output_rate == 25.0
    params = sum(p.numel() for p in enc.parameters())
    assert 11.0e6 < params < 11.4e6, params  # ResNet-18 trunk (11.18M) + 5x7x7 stem
    stem = enc.stem[0]
    assert stem.kernel_size == (5, 7, 7) and stem.stride == (1, 2, 2) and stem.out_channels == 64
    x = torch.randn(2, 7, 1, 40, 40)
    with torch.no_grad():
        y, lengths = enc(x, torch.tensor([7, 4]))
    assert y.shape == (2, 7, 512) and lengths.tolist() == [7, 4]
    assert y[1, 4:].abs().sum() == 0 and y[1, :4].abs().sum() > 0
    with pytest.raises(ValueError, match=r"expects video \[batch, time, 1, height, width\], got shape \(2, 7, 3, 40, 40\)"):
        enc(torch.randn(2, 7, 3, 40, 40), torch.tensor([7, 7]))
    with pytest.raises(ValueError, match="relu_type must be 'relu' or 'prelu'"):
        encoder_cls(relu_type="gelu")


def test_frames_do_not_leak_beyond_the_stem_window(encoder_cls):
    """Frame t depends only on frames t-2..t+2 (the stem's 5-frame kernel), as in the TCN papers."""
    enc = encoder_cls(in_channels=3).eval()
    x = torch.randn(1, 9, 3, 32, 32)
    changed = x.clone()
    changed[0, 8] += 1.0
    with torch.no_grad():
        a, _ = enc(x, torch.tensor([9]))
        b, _ = enc(changed, torch.tensor([9]))
    assert torch.allclose(a[0, :6], b[0, :6], atol=1e-5)
    assert not torch.allclose(a[0, 6:], b[0, 6:], atol=1e-5)


def _grid_clip(frames: int = 6) -> list[list[list[float]]] | None:
    if not GRID_ROI.is_dir():
        return None
    import cv2

    rois = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(GRID_ROI.glob("*.png"))[:frames]]
    return [cv2.resize(r, (44, 44)).tolist() for r in rois]


@pytest.mark.slow  # pip install + two subprocesses that import torch: 15-30 s on 2 busy cores
def test_installed_plugin_is_listed_and_used_by_a_recipe(tmp_path):
    # Install a copy with pip exactly as a user would, into its own --target directory.
    src = tmp_path / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "avtoolkit_resnet-0.1.0.dist-info" / "entry_points.txt").is_file()
    env = dict(os.environ, PYTHONPATH=str(site), AVTOOLKIT_STRICT_PLUGINS="1", PYTHONWARNINGS="ignore")

    listing = subprocess.run([str(SCRIPT), "list-components", "--kind", "encoder", "--json", "resnet*"],
                             capture_output=True, text=True, env=env, timeout=300)
    assert listing.returncode == 0, listing.stderr
    (row,) = json.loads(listing.stdout)
    assert row["name"] == "resnet18_3d" and row["source"] == "avtoolkit-resnet 0.1.0"
    assert row["spec"] == "avtoolkit_resnet.encoder:ResNet18Frontend" and not row["broken"]
    assert {a["name"]: a["default"] for a in row["arguments"]} == {
        "in_channels": 1, "relu_type": "prelu", "frame_rate": 25.0}

    recipe = tmp_path / "lrw_resnet.yaml"
    recipe.write_text(
        "model:\n"
        "  encoders:\n"
        "    video: {name: resnet18_3d, relu_type: relu}\n"
        "  head: {name: word_classifier, num_classes: 4}\n"
    )
    clip = _grid_clip()
    script = (
        "import json, sys, torch\n"
        "import avtoolkit_resnet\n"
        "from avtoolkit import build_model\n"
        "from avtoolkit.cli.main import main\n"
        "assert main(['validate', sys.argv[1]]) == 0\n"  # the CLI's validate, in this process
        "model = build_model(sys.argv[1]).eval()\n"
        "frames = json.loads(sys.argv[2])\n"
        "clip = torch.tensor(frames, dtype=torch.float32)[None, :, None] / 255.0 if frames else torch.rand(1, 6, 1, 44, 44)\n"
        "with torch.no_grad():\n"
        "    out = model({'video': clip})\n"
        "print(json.dumps({'plugin_file': avtoolkit_resnet.__file__, 'shape': list(out['log_probs'].shape),\n"
        "                  'prob_sum': float(out['log_probs'].exp().sum()),\n"
        "                  'head_in': model.head.classifier.in_features}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script, str(recipe), json.dumps(clip)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "OK (video:resnet18_3d -> word_classifier)" in run.stdout
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(result["plugin_file"]).is_relative_to(site)  # the pip-installed copy was used
    assert result["shape"] == [1, 4] and abs(result["prob_sum"] - 1.0) < 1e-4
    assert result["head_in"] == 512  # the head's input size came from the plugin's output_dim
