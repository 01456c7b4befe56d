"""``prepare`` into a cache a killed run left damaged (issue 24, section 3): a truncated or empty
``.npz`` used to count as "already cached" and the run that read it died with a traceback. The
cache's directory of each clip is checked (cheaply, nothing decompressed) and such clips are
prepared again, with a warning naming the file."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from avtoolkit.datasets.lrw import build_roi_cache, cache_path, list_clips
from avtoolkit.store import NpzClipStore
from synthetic_lrw import write_synthetic_lrw


def test_a_truncated_or_empty_cached_clip_is_prepared_again(tmp_path: Path, caplog):
    root = write_synthetic_lrw(tmp_path / "lipread_mp4", ("ABOUT",), {"train": 3, "val": 0, "test": 0}, frames=8)
    cache = tmp_path / "cache"
    first = build_roi_cache(root, cache, words_list=["ABOUT"], splits=["train"], workers=1, progress=False, sheets=0)
    assert first.prepared == 3
    clips = list_clips(root, "train", ["ABOUT"])
    whole, truncated, empty = (cache_path(cache, c) for c in clips)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        again = build_roi_cache(root, cache, words_list=["ABOUT"], splits=["train"], workers=1, progress=False,
                                sheets=0)
    assert (again.prepared, again.skipped, again.failed) == (2, 1, [])
    assert str(truncated) in caplog.text and str(empty) in caplog.text and "preparing it again" in caplog.text
    assert str(whole) not in caplog.text
    for path in (truncated, empty):
        with np.load(path) as clip:
            assert clip["rois"].shape[0] == 8


def test_the_store_tells_a_damaged_clip_without_decoding_it(tmp_path: Path):
    store = NpzClipStore(tmp_path)
    store.write("a", {"rois": np.zeros((4, 2, 2), np.uint8)})
    assert store.damage("a") is None
    assert store.damage("missing") == "not stored"
    store.write("other", {"labels": np.zeros(3)})
    assert "no 'rois' array" in store.damage("other")
    store.path("a").write_bytes(store.path("a").read_bytes()[:40])
    assert store.damage("a").startswith("unreadable (BadZipFile")


def _read_only(monkeypatch, folder: Path) -> None:
    """Makes ``folder`` behave as a read-only mount (the tests run as root, whom chmod does not stop):
    ``os.access(..., W_OK)`` says no and every atomic write into it fails."""
    import os

    import avtoolkit.store.npz as npz
    import avtoolkit.store.report as report

    real_access = os.access

    def access(path, mode, *args, **kwargs):  # noqa: ANN001
        if mode & os.W_OK and Path(path).resolve().is_relative_to(folder.resolve()):
            return False
        return real_access(path, mode, *args, **kwargs)

    def refuse(path, *args, **kwargs):  # noqa: ANN001
        raise PermissionError(30, "Read-only file system", str(path))

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(npz, "atomic_write", refuse)
    monkeypatch.setattr(report, "atomic_write", refuse)


def test_a_read_only_cache_is_used_as_it_is(tmp_path: Path, monkeypatch, capsys, caplog):
    from avtoolkit.cli.main import main

    root = write_synthetic_lrw(tmp_path / "lipread_mp4", ("ABOUT",), {"train": 2, "val": 1, "test": 1}, frames=8)
    cache = tmp_path / "cache"
    argv = ["prepare", "lrw_effv2t", f"data.root={root}", f"data.cache_dir={cache}", "data.words_list=[ABOUT]",
            "--workers", "1"]
    assert main(argv) == 0
    before = {p: p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}
    _read_only(monkeypatch, cache)
    assert main(argv) == 0, capsys.readouterr().err  # fully prepared: nothing to write, nothing written
    assert "Traceback" not in capsys.readouterr().err

    # One clip missing from the read-only cache: left out with a warning, not a PermissionError.
    victim = next(p for p in before if p.suffix == ".npz")
    monkeypatch.undo()
    victim.unlink()
    _read_only(monkeypatch, cache)
    with caplog.at_level(logging.WARNING):
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err  # 1: one clip is not prepared
    assert f"{cache} is read-only" in caplog.text, caplog.text
    assert {p: p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()} == {
        p: b for p, b in before.items() if p != victim}


def test_a_damaged_clip_of_a_read_only_cache_is_not_read(tmp_path: Path, monkeypatch):
    store = NpzClipStore(tmp_path / "cache")
    store.write("whole", {"rois": np.zeros((4, 2, 2), np.uint8)})
    store.write("cut", {"rois": np.zeros((4, 2, 2), np.uint8)})
    store.path("cut").write_bytes(store.path("cut").read_bytes()[:30])
    assert store.usable("cut")  # writable: prepare has just prepared any damaged clip again
    _read_only(monkeypatch, tmp_path / "cache")
    assert store.usable("whole") and not store.usable("cut") and not store.usable("missing")
