"""Contact sheets: crops in a grid with landmarks drawn, and the sheets a prepare run leaves."""

from __future__ import annotations

import numpy as np

from avtoolkit.roi.sheet import contact_sheet


def test_sheet_grid_and_landmark_colours():
    rois = np.full((20, 24, 24), 128, np.uint8)
    points = np.full((20, 68, 2), 12.0)
    points[:, 48:68] = [6.0, 18.0]  # the mouth points at one spot, drawn red
    points[:, 33] = [18.0, 6.0]  # a stable point, drawn green
    sheet = contact_sheet(rois, points, frames=8, columns=4, zoom=2, title="clip.mp4")
    assert sheet.shape == (22 + 2 * 48, 4 * 48, 3)
    tile = sheet[22:22 + 48, :48].astype(int)
    r, g, b = tile[36, 12], tile[12, 36], tile[24, 24]
    assert r[0] > 200 and r[1] < 100  # red mouth
    assert g[1] > 200 and g[0] < 100  # green stable point
    assert b[2] > 200 and b[0] < 150  # blue other points


def test_sheet_of_a_short_clip_shows_every_frame():
    sheet = contact_sheet(np.zeros((3, 10, 10), np.uint8), frames=16, columns=8, zoom=1)
    assert sheet.shape == (10, 30, 3)


def test_prepare_run_leaves_sheets_beside_its_report(tmp_path):
    import cv2

    from avtoolkit.data.lrw import prepare_lrw
    from avtoolkit.data.lrw.synthetic import write_synthetic_lrw

    root = write_synthetic_lrw(tmp_path / "lipread_mp4", ("ABOUT", "BLACK"), {"test": 2})
    prepare_lrw(root, tmp_path / "cache", splits=("test",), workers=1, progress=False, sheets=2)
    sheets = sorted((tmp_path / "cache" / "sheets").glob("*.png"))
    assert len(sheets) == 2
    image = cv2.imread(str(sheets[0]))
    assert image.shape[0] > 96 and image.shape[1] >= 96 * 2
