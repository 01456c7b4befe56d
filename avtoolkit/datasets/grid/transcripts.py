"""Dataset ``grid_text``: the transcripts of one GRID split, for a language model of a GRID recipe."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

from avtoolkit.datasets._text import Sentence, TextDataModule
from avtoolkit.datasets.grid.layout import GRID_HELP, GridNotFoundError, find_clips
from avtoolkit.datasets.grid.splits import OVERLAPPED_TEST_PER_SPEAKER, UNSEEN_SPEAKERS, split_clips
from avtoolkit.registry.kinds import DATASETS


@DATASETS.register("grid_text")
class GridText(TextDataModule):
    """GRID's sentences as text, split exactly as the ``grid`` dataset splits its clips.

    Training reads the training split's transcripts only, validation perplexity the validation
    split's, the test figure the test split's: with the split settings of the ASR recipe (the
    same keys, names and defaults as ``grid``'s), its LM never sees a test sentence. Only the
    alignment files are read: no video or audio is decoded and no prepared cache is needed.
    Vision and audio settings (``video_size``, ``modalities``, noise ...) are not arguments here,
    so a recipe that sets one is refused by validation, naming the key.

    Args:
        root: the GRID folder holding ``s<N>/`` and ``alignments/``.
        speakers: speakers to read (default: every ``s<N>`` folder).
        split: ``hash``, ``unseen_speakers`` or ``overlapped`` (as ``grid``).
        split_fractions: ``hash``: train/val/test fractions; other protocols use ``val`` only.
        test_speakers: held-out speakers of ``unseen_speakers``.
        test_per_speaker: held-out sentences per speaker of ``overlapped``.
        split_seed: seed of the ``overlapped`` draw.
        max_clips: at most this many sentences per split, chosen as ``grid`` chooses its clips.
        tokens: ``data.tokens`` (the ASR recipe's: the LM's vocabulary must equal its model's).
        batch_size: sentences per batch.
        workers: dataloader worker processes.

    Raises:
        GridNotFoundError: ``root`` is not set or not a GRID tree.
        TextDataError: a split without sentences.
    """

    def __init__(
        self,
        root: str | None = None,
        speakers: list[str] | None = None,
        split: Literal["hash", "unseen_speakers", "overlapped"] = "hash",
        split_fractions: dict[str, float] | None = None,
        test_speakers: list[str] = list(UNSEEN_SPEAKERS),
        test_per_speaker: int = OVERLAPPED_TEST_PER_SPEAKER,
        split_seed: int = 0,
        max_clips: dict[str, int] | None = None,
        tokens: dict | None = None,
        batch_size: int = 32,
        workers: int = 0,
    ) -> None:
        super().__init__(tokens, batch_size, workers)
        if root is None:
            raise GridNotFoundError(f"data.root is not set. {GRID_HELP}")
        self.root = Path(root).expanduser()
        layout = find_clips(self.root, speakers)
        self.layout_problems = layout.problems
        if layout.problems:  # the grid dataset leaves the same clips out, with the same warning
            warnings.warn(f"GRID: {len(layout.problems)} clips left out by the layout reader, e.g. "
                          f"{layout.problems[0][0]}: {layout.problems[0][1]}", stacklevel=2)
        split_args = {"protocol": split, "fractions": split_fractions, "test_speakers": test_speakers,
                      "test_per_speaker": test_per_speaker, "seed": split_seed}
        by_split = {name: [Sentence(id=c.key, text=c.transcript, source=f"GRID {c.key}") for c in clips]
                    for name, clips in split_clips(layout.clips, split_args, max_clips).items()}
        self.set_sentences(by_split, f"GRID under {self.root} (data.split {split})")
