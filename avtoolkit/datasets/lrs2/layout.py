"""LRS2's own layout: ``main/<video id>/<n>.mp4|.txt``, ``pretrain/...``, and ``train.txt``, ``val.txt``,
``test.txt``, ``pretrain.txt``.

The lists name one utterance per line, ``<video id>/<n>`` (``5535415699068794046/00001``);
``test.txt`` lines may carry a suffix after a space (``NF``, ``MV``), which is ignored.
``train``/``val``/``test`` utterances live in ``main/``, those of ``pretrain.txt`` in
``pretrain/``. ``main/`` transcripts hold ``Text:`` and ``Conf:``; ``pretrain/`` ones add
the word-timing table, used to cut long utterances (:func:`~avtoolkit.data.timed_words.segment_words`).
"""

from __future__ import annotations

import re
from pathlib import Path

from avtoolkit.datasets._sentences import CorpusLayout, lrs_clips
from avtoolkit.errors import DatasetNotFoundError

LRS2_HELP = ("LRS2 (BBC, licence from https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html): point "
             "data.root at the folder holding main/, pretrain/ and train.txt, val.txt, test.txt, pretrain.txt")
#: list file -> (the split it feeds, the folder its utterances are in).
LISTS = {"train.txt": ("train", "main"), "val.txt": ("val", "main"), "test.txt": ("test", "main"),
         "pretrain.txt": ("train", "pretrain")}
_ENTRY = re.compile(r"(\d+)/(\d+)")


def read_list(path: Path, layout: CorpusLayout) -> list[str]:
    """The ``<video id>/<n>`` entries of one list file; a malformed line is noted in ``layout`` (``file:line``)."""
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if not _ENTRY.fullmatch(fields[0]) or len(fields) > 2:
            layout.problems.append((f"{path.name}:{n}", f"{path}:{n}: expected '<video id>/<n>' with an optional "
                                                        f"suffix such as ' NF', got {line.strip()!r}"))
            continue
        entries.append(fields[0])
    return entries


def read_lrs2(root: str | Path, use_pretrain: bool = True, segment_seconds: float | None = 16.0) -> CorpusLayout:
    """LRS2's clips by split: ``train`` (``train.txt``, plus ``pretrain.txt`` cut to ``segment_seconds``), ``val``, ``test``.

    Args:
        root: the folder holding ``main/``, ``pretrain/`` and the lists.
        use_pretrain: add the pretrain set to ``train``.
        segment_seconds: cut utterances whose words span longer into segments of at most
            this many seconds at word timings (``None``: keep them whole).

    Raises:
        DatasetNotFoundError: ``root`` holds neither ``main/`` nor a split list.
    """
    root = Path(root).expanduser()
    present = [name for name in LISTS if (root / name).is_file()]
    if not (root / "main").is_dir() or not present:
        raise DatasetNotFoundError(f"no LRS2 under {root} (found {present or 'no split lists'}"
                                   f"{'' if (root / 'main').is_dir() else ', no main/'}). {LRS2_HELP}")
    layout = CorpusLayout()
    for name, (split, folder) in LISTS.items():
        if name == "pretrain.txt" and not use_pretrain or not (root / name).is_file():
            continue
        limit = segment_seconds if folder == "pretrain" else None
        for entry in read_list(root / name, layout):
            video = root / folder / f"{entry}.mp4"
            key = f"{folder}/{entry}"
            if not video.is_file():
                layout.problems.append((key, f"{root / name}: lists {entry}, but {video} does not exist"))
                continue
            layout.splits[split] += lrs_clips(key, video, layout, limit)
    return layout
