"""VoxCeleb2's own layout: ``dev/mp4/id<N>/<video id>/<n>.mp4`` and ``test/mp4/...``.

``dev`` holds 5,994 speakers, ``test`` 118 others. Training reads ``dev`` minus a held-out
share of its **speakers** (by hash of the ``id<N>``, ``val_fraction``), validation that share,
testing ``test``. Transcripts come from a labels file (:mod:`.labels`); a clip without a label
is reported, never guessed. VoxCeleb2 has no word timings, so clips stay whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from avtoolkit.datasets._sentences import CorpusLayout, SentenceClip, hash_unit
from avtoolkit.datasets.voxceleb2.labels import Labels
from avtoolkit.errors import DatasetNotFoundError

VOXCELEB2_HELP = ("VoxCeleb2 (https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html): point data.root at the "
                  "folder holding dev/mp4/id<N>/<video id>/<n>.mp4 (and test/mp4/...), and data.labels at a file "
                  "made by `avtoolkit label ROOT --checkpoint CKPT --output labels.tsv`")
SUBSETS = ("dev", "test")


def find_videos(root: str | Path, subsets: Sequence[str] = SUBSETS) -> list[tuple[str, Path]]:
    """``(key, path)`` of every clip of ``subsets``, sorted; the key is the path under ``root`` without ``.mp4``.

    Raises:
        DatasetNotFoundError: no ``<subset>/mp4/id*/`` folder under ``root``.
    """
    root = Path(root).expanduser()
    unknown = [s for s in subsets if s not in SUBSETS]
    if unknown:
        raise ValueError(f"VoxCeleb2 subsets are {', '.join(SUBSETS)}; got {', '.join(unknown)}")
    found = [s for s in subsets if any((root / s / "mp4").glob("id*"))]
    if not found:
        raise DatasetNotFoundError(f"no VoxCeleb2 clips under {root} (no {'/'.join(subsets)}/mp4/id<N>/ folders). "
                                   f"{VOXCELEB2_HELP}")
    return [(p.relative_to(root).with_suffix("").as_posix(), p)
            for s in found for p in sorted((root / s / "mp4").glob("id*/*/*.mp4"))]


def read_voxceleb2(root: str | Path, labels: Labels, val_fraction: float = 0.01) -> CorpusLayout:
    """VoxCeleb2's labelled clips by split (``dev`` minus held-out speakers, those speakers, ``test``)."""
    if not 0.0 <= val_fraction < 1.0:
        from avtoolkit.recipe.errors import RecipeError

        raise RecipeError(f"data.val_fraction: {val_fraction} is not in [0, 1)")
    layout = CorpusLayout(problems=[p for p in labels.problems])
    for key, video in find_videos(root):
        parts = key.split("/")  # <subset>/mp4/id<N>/<video id>/<n>
        subset, speaker = parts[0], parts[2]
        text = labels.transcripts.get(key)
        if text is None:
            layout.problems.append((key, f"no label in {labels.path}"))
            continue
        split = "test" if subset == "test" else "val" if hash_unit(speaker) < val_fraction else "train"
        layout.splits[split].append(SentenceClip(key, video, text, source=f"{labels.path} ({key})"))
    return layout
