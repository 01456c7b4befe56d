"""Where GRID errors come from: word error rate per grammar slot, and the commonest confusions.

GRID sentences are ``command colour preposition letter digit adverb``. Reads the predictions
``avtoolkit eval --save-predictions FILE.jsonl`` writes (sentences, from a CTC recipe) or a
word classifier's (one word per row, from ``grid_words``) and prints one table:

    avtoolkit eval --checkpoint runs/grid_avasr/checkpoints/best.ckpt data.root=../shared/data/grid_s1 \\
        data.modalities=[video] --save-predictions /tmp/video.jsonl
    python benchmarks/grid_slots.py /tmp/video.jsonl [more.jsonl ...] [--md out.md]
    python benchmarks/grid_slots.py benchmarks/results/grid_pocketsphinx/pocketsphinx.json  # its clean run

A sentence prediction is aligned to its reference word by word (Levenshtein, as WER counts);
a reference word substituted or deleted counts as an error of its slot, and words the
prediction inserts are counted on their own.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Iterable

from avtoolkit.data.grid_grammar import GRID_SLOTS

SLOTS = tuple(GRID_SLOTS)


def slot_of(word: str) -> str | None:
    """The GRID slot a word belongs to (``None`` for a non-GRID word).

    Examples:
        >>> slot_of("blue"), slot_of("f"), slot_of("w")
        ('colour', 'letter', None)
    """
    return next((slot for slot, words in GRID_SLOTS.items() if word in words), None)


def align(ref: list[str], hyp: list[str]) -> list[tuple[str | None, str | None]]:
    """A minimal-edit word alignment: pairs ``(ref word, hyp word)``; ``None`` marks a gap.

    Examples:
        >>> align("bin blue at f two now".split(), "bin blue at s two".split())
        [('bin', 'bin'), ('blue', 'blue'), ('at', 'at'), ('f', 's'), ('two', 'two'), ('now', None)]
        >>> align(["a", "b"], ["a", "x", "b"])
        [('a', 'a'), (None, 'x'), ('b', 'b')]
    """
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]), cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((ref[i - 1], None))
            i -= 1
        else:
            pairs.append((None, hyp[j - 1]))
            j -= 1
    return pairs[::-1]


def slot_errors(rows: Iterable[dict]) -> dict:
    """Per-slot counts (words, errors) and confusions from prediction rows (``reference``, ``prediction``).

    Examples:
        >>> r = slot_errors([{"reference": "bin blue at f two now", "prediction": "bin blue at s two"}])
        >>> r["slots"]["letter"], r["slots"]["adverb"], r["slots"]["command"]
        ({'words': 1, 'errors': 1}, {'words': 1, 'errors': 1}, {'words': 1, 'errors': 0})
        >>> r["confusions"][:2]
        [('f', 's', 1), ('now', '-', 1)]
    """
    slots = {s: {"words": 0, "errors": 0} for s in SLOTS}
    confusions: collections.Counter = collections.Counter()
    inserted = sentences = wrong_sentences = 0
    for row in rows:
        ref, hyp = str(row["reference"]).split(), str(row["prediction"]).split()
        sentences += 1
        wrong_sentences += ref != hyp
        for r, h in align(ref, hyp):
            if r is None:
                inserted += 1
                continue
            slot = slot_of(r)
            if slot is None:
                continue
            slots[slot]["words"] += 1
            if r != h:
                slots[slot]["errors"] += 1
                confusions[(r, h or "-")] += 1
    return {"slots": slots, "inserted": inserted, "sentences": sentences, "wrong_sentences": wrong_sentences,
            "confusions": [(r, h, n) for (r, h), n in confusions.most_common()]}


def read_rows(path: Path) -> list[dict]:
    """Prediction rows of a ``.jsonl`` file, or the clean-audio hypotheses of ``grid_pocketsphinx.py``'s JSON."""
    if path.suffix == ".json":
        peer = json.loads(path.read_text(encoding="utf-8"))
        return [{"reference": h["ref"], "prediction": h["hyp"]} for h in peer["hypotheses"]["clean"]]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def markdown(results: dict[str, dict], top: int = 8) -> str:
    """One table: a column per prediction file, a row per slot (word error %), then the top confusions."""
    names = list(results)
    lines = ["| slot | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for slot in SLOTS:
        cells = []
        for name in names:
            c = results[name]["slots"][slot]
            cells.append(f"{100 * c['errors'] / c['words']:.1f} ({c['errors']}/{c['words']})" if c["words"] else "-")
        lines.append(f"| {slot} | " + " | ".join(cells) + " |")
    lines.append("| inserted words | " + " | ".join(str(results[n]["inserted"]) for n in names) + " |")
    lines.append("| wrong sentences | " + " | ".join(
        f"{results[n]['wrong_sentences']}/{results[n]['sentences']}" for n in names) + " |")
    lines.append("")
    for name in names:
        conf = ", ".join(f"{r}->{h} {n}" for r, h, n in results[name]["confusions"][:top])
        lines.append(f"- {name}: {conf or 'none'}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("predictions", nargs="+", type=Path, help="jsonl files of `avtoolkit eval --save-predictions`")
    p.add_argument("--md", type=Path, help="also write the table here")
    args = p.parse_args()
    results = {path.stem: slot_errors(read_rows(path)) for path in args.predictions}
    text = markdown(results)
    print(text)
    if args.md:
        args.md.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
