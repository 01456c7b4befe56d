"""benchmarks/grid_slots.py: GRID errors counted by grammar slot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.grid_slots import align, slot_errors


def test_alignment_puts_each_error_in_its_slot() -> None:
    rows = [{"reference": "bin blue at f two now", "prediction": "bin blue at s two now"},
            {"reference": "lay red by g five soon", "prediction": "lay red by by g five"},
            {"reference": "set white with p nine again", "prediction": "set white with p nine again"}]
    r = slot_errors(rows)
    assert r["slots"]["letter"] == {"words": 3, "errors": 1}
    assert r["slots"]["adverb"] == {"words": 3, "errors": 1}  # "soon" dropped
    assert r["slots"]["preposition"] == {"words": 3, "errors": 0} and r["inserted"] == 1
    assert r["wrong_sentences"] == 2 and ("f", "s", 1) in r["confusions"] and ("soon", "-", 1) in r["confusions"]
    assert align([], ["x"]) == [(None, "x")] and align(["x"], []) == [("x", None)]


def test_the_script_prints_a_table_for_word_predictions(tmp_path: Path) -> None:
    path = tmp_path / "words.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "reference": r, "prediction": p}) + "\n"
                            for i, (r, p) in enumerate([("b", "d"), ("b", "b"), ("two", "two"), ("now", "now")])))
    out = subprocess.run([sys.executable, "benchmarks/grid_slots.py", str(path), "--md", str(tmp_path / "t.md")],
                         capture_output=True, text=True, cwd=Path(__file__).parents[2], check=True).stdout
    assert "| letter | 50.0 (1/2) |" in out and "| digit | 0.0 (1/1) |" not in out and "| digit | 0.0 (0/1) |" in out
    assert "b->d 1" in out and (tmp_path / "t.md").read_text() == out.rstrip("\n") + "\n"
