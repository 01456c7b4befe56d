"""The labels file: machine transcripts of VoxCeleb2 clips and the model that made them.

VoxCeleb2 has no transcripts; auto_avsr and SyncVSR transcribe it with an ASR model and train
on those. ``avtoolkit label`` writes such a file; the ``voxceleb2`` dataset reads it. It is UTF-8
text, so it diffs, greps and concatenates::

    # avtoolkit-labels 1
    # model: {"checkpoint": "/runs/a/best.ckpt", "sha256": "9f2c...", "recipe": "grid_audio", ...}
    dev/mp4/id00012/21Uxsk56VDQ/00001<TAB>so what did you think
    ...

Keys are the clip's path under the corpus root without ``.mp4``. The ``model`` line records the
checkpoint's path and SHA-256, its recipe's name, the decoder settings, the inputs used and
the avtoolkit version, so a training run on these labels can say what taught it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from avtoolkit.errors import AvtoolkitError

LABELS_MAGIC = "# avtoolkit-labels 1"
_MODEL_PREFIX = "# model: "


class LabelsError(AvtoolkitError, ValueError):
    """A labels file cannot be used as a whole (no header, no model line); the message names the file and line."""


@dataclass
class Labels:
    """A read labels file: the model that made it, key -> transcript, and ``(file:line, reason)`` of bad lines."""

    path: Path
    model: dict[str, Any]
    transcripts: dict[str, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


def header(model: Mapping[str, Any]) -> str:
    """The two header lines of a labels file made by ``model`` (a JSON-serialisable description)."""
    return f"{LABELS_MAGIC}\n{_MODEL_PREFIX}{json.dumps(dict(model), sort_keys=True)}\n"


def write_labels(path: str | os.PathLike[str], model: Mapping[str, Any], rows: Iterable[tuple[str, str]]) -> Path:
    """Writes a whole labels file atomically.

    Examples:
        >>> import tempfile
        >>> p = write_labels(Path(tempfile.mkdtemp()) / "l.tsv", {"recipe": "x"}, [("dev/mp4/id1/v/00001", "hi")])
        >>> read_labels(p).transcripts, read_labels(p).model
        ({'dev/mp4/id1/v/00001': 'hi'}, {'recipe': 'x'})
    """
    from avtoolkit.atomic import atomic_write

    path = Path(path)
    with atomic_write(path, "w") as fh:
        fh.write(header(model))
        for key, text in rows:
            fh.write(f"{key}\t{text}\n")
    return path


def read_labels(path: str | os.PathLike[str]) -> Labels:
    """Reads a labels file; a bad line is kept in :attr:`Labels.problems` as ``file:line: reason``.

    Raises:
        FileNotFoundError: no such file.
        LabelsError: the file lacks the ``# avtoolkit-labels 1`` or ``# model:`` line.
    """
    from avtoolkit.data.text import CharVocab, normalize_text

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels file not found: {path} (make one with `avtoolkit label`)")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != LABELS_MAGIC:
        raise LabelsError(f"{path}:1: not an avtoolkit labels file (expected {LABELS_MAGIC!r}; made by `avtoolkit label`)")
    if len(lines) < 2 or not lines[1].startswith(_MODEL_PREFIX):
        raise LabelsError(f"{path}:2: no '# model: {{...}}' line saying which model made the labels")
    try:
        model = json.loads(lines[1][len(_MODEL_PREFIX):])
    except json.JSONDecodeError as exc:
        raise LabelsError(f"{path}:2: the model line is not JSON ({exc.msg})") from None
    labels = Labels(path=path, model=model)
    vocab = CharVocab()
    for n, line in enumerate(lines[2:], 3):
        if not line.strip() or line.startswith("#"):
            continue
        key, tab, text = line.partition("\t")
        where = f"{path}:{n}"
        if not tab or not key.strip():
            labels.problems.append((where, f"{where}: expected 'clip key<TAB>transcript', got {line.strip()!r}"))
            continue
        norm = normalize_text(text)
        bad = vocab.invalid_chars(norm)
        if not norm or bad:
            why = "empty transcript" if not norm else f"characters outside the vocabulary {''.join(bad)!r}"
            labels.problems.append((key, f"{where}: {why} for {key}"))
            continue
        labels.transcripts[key.strip()] = norm
    return labels
