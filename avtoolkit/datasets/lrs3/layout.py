"""LRS3's own layout: ``pretrain/``, ``trainval/`` and ``test/``, each ``<video id>/<n>.mp4|.txt``.

Every LRS3 transcript has ``Text:``, ``Conf:``, ``Ref:`` (the TED/YouTube source) and the word
timings. LRS3 ships no validation list; the usual practice is to hold out part of ``trainval``.
Here the held-out part is chosen **by video id** (a TED talk, so one speaker): the videos whose
:func:`~avtoolkit.datasets._sentences.hash_unit` of the id is below ``val_fraction``. No speaker's
talk is on both sides, and adding or removing other videos never moves one.
"""

from __future__ import annotations

from pathlib import Path

from avtoolkit.datasets._sentences import CorpusLayout, hash_unit, lrs_clips
from avtoolkit.errors import DatasetNotFoundError

LRS3_HELP = ("LRS3 (TED, licence from https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs3.html): point "
             "data.root at the folder holding pretrain/, trainval/ and test/ (each <video id>/<n>.mp4 and .txt)")
SUBSETS = ("pretrain", "trainval", "test")


def read_lrs3(root: str | Path, use_pretrain: bool = True, segment_seconds: float | None = 16.0,
              val_fraction: float = 0.02) -> CorpusLayout:
    """LRS3's clips by split: ``train`` (trainval minus val, plus pretrain cut to ``segment_seconds``), ``val``, ``test``.

    Args:
        root: the folder holding ``pretrain/``, ``trainval/``, ``test/``.
        use_pretrain: add ``pretrain/`` to ``train``.
        segment_seconds: cut utterances (of any subset) whose words span longer into segments of
            at most this many seconds at word timings; ``None``: keep them whole. ``test/`` is
            never cut: the test set is scored as released.
        val_fraction: the share of ``trainval`` videos (by id hash) held out for validation.

    Raises:
        DatasetNotFoundError: none of the three folders is there.
    """
    root = Path(root).expanduser()
    if not any((root / s).is_dir() for s in SUBSETS):
        raise DatasetNotFoundError(f"no LRS3 under {root} (no pretrain/, trainval/ or test/). {LRS3_HELP}")
    if not 0.0 <= val_fraction < 1.0:
        from avtoolkit.recipe.errors import RecipeError

        raise RecipeError(f"data.val_fraction: {val_fraction} is not in [0, 1)")
    layout = CorpusLayout()
    for subset in SUBSETS:
        if subset == "pretrain" and not use_pretrain or not (root / subset).is_dir():
            continue
        for video in sorted((root / subset).glob("*/*.mp4")):
            video_id = video.parent.name
            split = ("test" if subset == "test" else
                     "val" if subset == "trainval" and hash_unit(video_id) < val_fraction else "train")
            key = f"{subset}/{video_id}/{video.stem}"
            layout.splits[split] += lrs_clips(key, video, layout, None if subset == "test" else segment_seconds)
    return layout
