"""What the text datasets share (language-model training): sentences to token ids, their batches, the datamodule.

A text dataset yields, per sentence, ``text_ids`` (the start token 0, then the sentence's token
ids) and ``targets`` (the token ids, then the end token 0): teacher forcing for next-token
prediction. ``collate`` turns them into ``batch["text"]`` / ``text_lengths`` (what the
``token_embedding`` encoder reads) and ``targets`` / ``target_lengths``. The tokens are the
recipe's ``data.tokens`` (characters by default, or SentencePiece), so an LM trained on them
scores exactly the token ids an ASR model of the same tokens emits.

Sentences are read and encoded when the dataset is built, before a run writes anything, so a
bad line is an error naming its file and line with the run directory untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from avtoolkit.data.contract import collate
from avtoolkit.data.tokens import make_vocab
from avtoolkit.datasets._sentences import hash_unit
from avtoolkit.datasets.base import AVDataModule
from avtoolkit.errors import AvtoolkitError

SPLITS = ("train", "val", "test")


class TextDataError(AvtoolkitError, ValueError):
    """A text dataset's file or line cannot be used (missing file, a line with no token of the vocabulary)."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text dataset: its id, its normalised text and where it came from (``file:line``)."""

    id: str
    text: str
    source: str


def hash_split(key: str, fractions: Mapping[str, float]) -> str:
    """The split of ``key`` (a sentence's normalised text): the same text always lands in the same split.

    Examples:
        >>> hash_split("bin blue at f two now", {"train": 1.0, "val": 0.0, "test": 0.0})
        'train'
    """
    u, edge = hash_unit(key), 0.0
    for name, share in fractions.items():
        edge += float(share)
        if u < edge:
            return name
    return list(fractions)[-1]


def check_fractions(fractions: Mapping[str, float] | None, default: Mapping[str, float]) -> dict[str, float]:
    """``data.split_fractions`` over ``train``/``val``/``test``, non-negative and summing to 1.

    Raises:
        TextDataError: another split name, a negative share, or a sum other than 1.
    """
    out = {k: float(v) for k, v in (fractions or default).items()}
    unknown = sorted(set(out) - set(SPLITS))
    if unknown or any(v < 0 for v in out.values()) or abs(sum(out.values()) - 1.0) > 1e-6:
        raise TextDataError(f"data.split_fractions: give non-negative train, val and test shares summing to 1, "
                            f"got {dict(fractions or {})}")
    return out


class TextSentences(Dataset):
    """Encoded sentences as dataset items (``id``, ``text``, ``source``, ``text_ids``, ``targets``)."""

    def __init__(self, sentences: Sequence[Sentence], ids: Sequence[Sequence[int]]) -> None:
        self.sentences, self.ids = list(sentences), [list(i) for i in ids]

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, ids = self.sentences[i], self.ids[i]
        return {"id": s.id, "text": s.text, "source": s.source,
                "text_ids": torch.tensor([0, *ids], dtype=torch.long), "targets": torch.tensor([*ids, 0], dtype=torch.long)}


class TextDataModule(AVDataModule):
    """Base of the text datasets: subclasses give each split's sentences to :meth:`set_sentences`.

    Args:
        tokens: the token kind (``data.tokens``: characters, or ``{kind: sentencepiece, model: PATH}``).
        batch_size: sentences per batch.
        workers: dataloader worker processes (0: encoded sentences are cheap to batch in-process).
    """

    #: what the batches hold for a model to read (the ``token_embedding`` encoder's modality).
    modalities = ["text"]

    def __init__(self, tokens: Mapping[str, Any] | None = None, batch_size: int = 32, workers: int = 0) -> None:
        super().__init__()
        self.vocab = make_vocab(tokens)
        self.vocabulary = list(self.vocab.tokens)
        self.batch_size, self.workers = batch_size, workers
        self.splits: dict[str, TextSentences] = {}

    def encode(self, sentence: Sentence) -> list[int]:
        """Token ids of one sentence.

        Raises:
            TextDataError: naming ``sentence.source``: nothing left after normalisation, or a
                character outside the vocabulary (``data.tokens``).
        """
        text = sentence.text
        if not text:
            raise TextDataError(f"{sentence.source}: the line has no token of the vocabulary (nothing is left after "
                                "normalisation: lower case, punctuation removed); delete it or write it in words")
        bad = self.vocab.invalid_chars(text)
        if bad:
            raise TextDataError(f"{sentence.source}: characters outside the vocabulary (data.tokens) {''.join(bad)!r} "
                                f"in {text!r}; spell digits and symbols as words, or train on the ASR recipe's tokens")
        return self.vocab.encode(text)

    def set_sentences(self, by_split: Mapping[str, Sequence[Sentence]], where: str) -> None:
        """Encodes every split's sentences (every line checked now, before a run writes anything).

        Raises:
            TextDataError: a bad line, or an empty split (naming ``where`` and how to fill it).
        """
        for split in SPLITS:
            sentences = list(by_split.get(split, ()))
            if not sentences:
                raise TextDataError(f"{where}: the {split} split has no sentence; give more text or change "
                                    "data.split_fractions")
            self.splits[split] = TextSentences(sentences, [self.encode(s) for s in sentences])

    def describe(self) -> dict[str, Any]:
        return {split: len(ds) for split, ds in self.splits.items()} | {"tokens": len(self.vocabulary)}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle, num_workers=self.workers,
                          collate_fn=collate, persistent_workers=self.workers > 0)

