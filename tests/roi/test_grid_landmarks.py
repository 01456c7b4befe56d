"""The bundled face models on a real GRID clip (needs the `landmarks` extra and shared/data)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

GRID_S1 = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid_s1" / "s1"
CLIP = GRID_S1 / "bbaf2n.mp4"
pytestmark = [
    pytest.mark.skipif(not CLIP.is_file(), reason=f"GRID clip not found at {CLIP}"),
    pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                       reason="the 'landmarks' extra is not installed: pip install 'avtoolkit[landmarks]'"),
]


def test_grid_clip_landmarks_crops_and_contact_sheet(tmp_path):
    import cv2

    from avtoolkit.cli.main import main
    from avtoolkit.data.media import read_video
    from avtoolkit.roi.aligned_crops import aligned_crops

    gray, _ = read_video(CLIP, color="gray")
    result = aligned_crops(gray, None, (96, 96), source=CLIP)
    found = ~np.isnan(result.landmarks).any(axis=(1, 2))
    assert found.mean() >= 0.98
    # The lips sit in the middle of the crop, and the crop does not zoom over the clip.
    mouth = result.crop_landmarks()[:, 48:68].mean(axis=1)
    assert np.abs(mouth - 47.5).max() < 0.1 * 96
    widths = result.boxes()[:, 2]
    assert widths.max() / widths.min() < 1.1
    # The face spans the frame's middle third: the landmarks are on the speaker, not elsewhere.
    centre = np.nanmean(result.landmarks, axis=(0, 1))
    assert 100 < centre[0] < 260 and 80 < centre[1] < 240

    sheet = tmp_path / "sheet.png"
    assert main(["crops", str(CLIP), "--out", str(sheet), "--frames", "8"]) == 0
    image = cv2.imread(str(sheet))
    assert image.shape[1] == 8 * 192 and image.shape[0] > 192
