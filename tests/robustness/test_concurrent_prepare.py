"""Two ``avtoolkit prepare`` into one cache at once: every cached clip, picture and report is
whole (temporary file + ``os.replace``), and a later prepare finds everything done."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from avtoolkit.datasets.lrw import build_roi_cache, cache_path, list_clips
from synthetic_lrw import write_synthetic_lrw

WORDS = ("ABOUT", "BLACK")


@pytest.mark.slow  # two fresh interpreters importing torch: ~35 s on a loaded 2-core machine
def test_two_prepares_into_one_cache_leave_it_whole(tmp_path: Path):
    root = write_synthetic_lrw(tmp_path / "lipread_mp4", WORDS, {"train": 3, "val": 1, "test": 1}, frames=12)
    (root / "BLACK" / "test" / "BLACK_09999.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video" * 20)
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "avtoolkit", "prepare", "lrw_effv2t", f"data.root={root}",
            f"data.cache_dir={cache}", f"data.words_list=[{','.join(WORDS)}]", "--workers", "1"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 1, err  # 1: the corrupt clip failed, the rest were prepared
        assert "Traceback" not in err and "1 failed" in out, out + err

    clips = [c for split in ("train", "val", "test") for c in list_clips(root, split, list(WORDS))]
    assert len(clips) == 11
    for clip in clips:
        if clip.id == "BLACK_09999":
            assert not cache_path(cache, clip).exists()
            continue
        with np.load(cache_path(cache, clip)) as data:
            assert data["rois"].shape == (12, 96, 96) and data["rois"].dtype == np.uint8
    assert list(cache.rglob("*.tmp")) == []
    report = (cache / "prepare_report.tsv").read_text().splitlines()
    assert len(report) == 2 and "BLACK_09999.mp4" in report[1]
    sheets = sorted((cache / "sheets").glob("*.png"))
    assert sheets and all(cv2.imread(str(s)) is not None for s in sheets)

    again = build_roi_cache(root, cache, words_list=list(WORDS), workers=1, progress=False, sheets=0)
    assert again.prepared == 0 and again.skipped == 10 and len(again.failed) == 1
