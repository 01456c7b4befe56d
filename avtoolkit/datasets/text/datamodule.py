"""Dataset ``text_file``: a transcript file, one sentence a line, split by a hash of each sentence."""

from __future__ import annotations

from pathlib import Path

from avtoolkit.data.text import normalize_text
from avtoolkit.datasets._text import Sentence, TextDataError, TextDataModule, check_fractions, hash_split
from avtoolkit.registry.kinds import DATASETS

#: default shares of the sentences: most for training, enough held out for a stable perplexity.
FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


@DATASETS.register("text_file")
class TranscriptFile(TextDataModule):
    """Sentences of a UTF-8 text file, one a line, for a language model (``avtoolkit run``).

    Each line is normalised as transcripts are (lower case, punctuation removed) and must then
    be spelled in the recipe's tokens: a line left empty, or with a character outside them (a
    digit, say), is an error naming the file and line. Blank lines are skipped. A sentence's
    split comes from a hash of its normalised text, so a sentence repeated in the file never sits
    in two splits, and adding lines never moves the others.

    Args:
        path: the transcript file (relative paths are taken from the working directory).
        split_fractions: train/val/test shares.
        tokens: ``data.tokens`` (use the ASR recipe's: the LM's vocabulary must equal its model's).
        batch_size: sentences per batch.
        workers: dataloader worker processes.

    Raises:
        TextDataError: no such file, a bad line, or an empty split.

    Examples:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "lines.txt"
        >>> _ = f.write_text("\\n".join(f"Bin blue at {c} one now." for c in "abcdefghij") + "\\n", encoding="utf-8")
        >>> dm = TranscriptFile(str(f), split_fractions={"train": 0.6, "val": 0.2, "test": 0.2})
        >>> sum(dm.describe()[s] for s in ("train", "val", "test")), dm.splits["train"].sentences[0].text[:8]
        (10, 'bin blue')
    """

    def __init__(self, path: str | None = None, split_fractions: dict[str, float] | None = None,
                 tokens: dict | None = None, batch_size: int = 32, workers: int = 0) -> None:
        super().__init__(tokens, batch_size, workers)
        if path is None:
            raise TextDataError("data.path is not set: give the transcript file (one sentence a line), "
                                "e.g. data.path=texts.txt")
        file = Path(path).expanduser()
        if not file.is_file():
            raise TextDataError(f"data.path: {file}: no such transcript file (one sentence a line)")
        fractions = check_fractions(split_fractions, FRACTIONS)
        by_split: dict[str, list[Sentence]] = {}
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise TextDataError(f"data.path: {file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            text = normalize_text(line)
            sentence = Sentence(id=f"{file.stem}:{lineno}", text=text, source=f"{file}:{lineno}")
            by_split.setdefault(hash_split(text, fractions), []).append(sentence)
        self.path = file
        self.set_sentences(by_split, f"data.path: {file}")
