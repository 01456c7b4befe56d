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

    from synthetic_lrw import write_synthetic_lrw

    from avtoolkit.datasets.lrw.prepare import build_roi_cache

    root = write_synthetic_lrw(tmp_path / "lipread_mp4", ("ABOUT", "BLACK"), {"test": 2})
    build_roi_cache(root, tmp_path / "cache", splits=("test",), workers=1, progress=False, sheets=2)
    sheets = sorted((tmp_path / "cache" / "sheets").glob("*.png"))
    assert len(sheets) == 2
    image = cv2.imread(str(sheets[0]))
    assert image.shape[0] > 96 and image.shape[1] >= 96 * 2


def test_crops_command_with_a_landmark_file_needs_no_detector(tmp_path, capsys):
    """`avtoolkit crops VIDEO --landmarks clip.pkl --out sheet.png` on a drawn face."""
    import pickle
    import sys
    from pathlib import Path

    import cv2

    from avtoolkit.cli.main import main

    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from test_mean_face import canonical_face, place, similarity
    finally:
        sys.path.pop(0)
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    try:
        from test_media import write_mp4
    finally:
        sys.path.pop(0)
    gray, points = place(canonical_face(), similarity(20, 0.9, (120, 40)), (320, 400), frames=10)
    video = write_mp4(tmp_path / "face.mp4", np.repeat(gray[..., None], 3, axis=-1))
    frames_pts = [None if t == 4 else points[t] for t in range(10)]  # frame 4: no face found
    (tmp_path / "face.pkl").write_bytes(pickle.dumps(frames_pts))
    out = tmp_path / "sheet.png"
    assert main(["crops", str(video), "--landmarks", str(tmp_path / "face.pkl"), "--out", str(out),
                 "--size", "64", "--frames", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    sheet = cv2.imread(str(out))
    assert sheet.shape == (22 + 128, 4 * 128, 3)
    red = (sheet[..., 2] > 200) & (sheet[..., 1] < 100) & (sheet[..., 0] < 100)
    ys, xs = np.nonzero(red[22:, :128])  # the first crop's mouth points sit in its middle
    assert abs(xs.mean() - 64) < 10 and abs(ys.mean() - 64) < 10
