"""Fixtures for the GRID tests: the shared s1 clips (skipped when absent) and tiny synthetic layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_GRID = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "grid_s1"


@pytest.fixture
def grid_root() -> Path:
    if not (SHARED_GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {SHARED_GRID} (see docs/grid.md)")
    return SHARED_GRID


def write_alignment(path: Path, words: list[tuple[int, int, str]]) -> None:
    """A ``.align`` file the way GRID writes it (CRLF, silence around the sentence)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{s} {e} {w}\r\n" for s, e, w in words).encode())


def sentence_alignment(sentence: str, start: int = 20000, step: int = 5000) -> list[tuple[int, int, str]]:
    """Silence, the words of ``sentence`` back to back ``step`` samples each, silence to 75 frames."""
    rows, t = [(0, start, "sil")], start
    for w in sentence.split():
        rows.append((t, t + step, w))
        t += step
    return rows + [(t, max(t, 75000), "sil")]


def make_layout(root: Path, clips: dict[str, list[str]], align_from: dict[str, str] | None = None) -> Path:
    """Empty ``s<N>/<id>.mpg`` files and matching alignments; ``align_from`` swaps alignment folders."""
    from avtoolkit.datasets.grid.layout import sentence_from_id

    for speaker, ids in clips.items():
        folder = (align_from or {}).get(speaker, speaker)
        for clip_id in ids:
            (root / speaker).mkdir(parents=True, exist_ok=True)
            (root / speaker / f"{clip_id}.mpg").write_bytes(b"")
            write_alignment(root / "alignments" / folder / f"{clip_id}.align",
                            sentence_alignment(sentence_from_id(clip_id)))
    return root
