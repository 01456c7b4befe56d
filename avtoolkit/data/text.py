"""Character vocabulary and text normalisation for CTC recognition.

Normalisation (applied to references and manifests alike): lower-case, Unicode
apostrophes become ``'``, hyphens and underscores become spaces, every other
character outside ``a-z``, space and ``'`` is removed only when it is punctuation;
whitespace runs collapse to one space. Digits are *not* spelled out: a transcript with
a digit is reported as outside the vocabulary so the user decides how to write it.
"""

from __future__ import annotations

import re
import string
import unicodedata

BLANK = "<blank>"
#: blank first (index 0), then space, apostrophe and a-z: 29 tokens.
CHARACTERS: list[str] = [BLANK, " ", "'", *string.ascii_lowercase]

_APOSTROPHES = {"\u2019", "\u2018", "\u02bc", "`", "\u00b4"}
_PUNCT = set(string.punctuation) - {"'"}


def normalize_text(text: str) -> str:
    """Normalises a transcript for character CTC.

    Examples:
        >>> normalize_text("  Bin BLUE, at F-two… NOW!  ")
        'bin blue at f two now'
        >>> normalize_text("Don\u2019t")
        "don't"
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join("'" if c in _APOSTROPHES else c for c in text)
    text = re.sub(r"[-_/]", " ", text)
    # The apostrophe is punctuation to Unicode but a token of the vocabulary: keep it.
    text = "".join(c for c in text if c == "'" or (c not in _PUNCT and unicodedata.category(c)[0] != "P"))
    return re.sub(r"\s+", " ", text).strip()


class CharVocab:
    """Maps normalised text to CTC token ids and back (blank is id 0).

    Examples:
        >>> vocab = CharVocab()
        >>> len(vocab), vocab.blank_id
        (29, 0)
        >>> vocab.decode(vocab.encode("bin blue"))
        'bin blue'
    """

    def __init__(self, tokens: list[str] | None = None) -> None:
        self.tokens = list(tokens or CHARACTERS)
        self.blank_id = 0
        self._index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def invalid_chars(self, text: str) -> list[str]:
        """Characters of already-normalised ``text`` outside the vocabulary."""
        return sorted({c for c in text if c not in self._index or c == BLANK})

    def encode(self, text: str) -> list[int]:
        """Token ids of normalised ``text``.

        Raises:
            ValueError: a character outside the vocabulary (named in the message).
        """
        bad = self.invalid_chars(text)
        if bad:
            raise ValueError(f"characters outside the vocabulary: {''.join(bad)!r} in {text!r}")
        return [self._index[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        """Text of token ids (blanks dropped, no CTC collapsing)."""
        return "".join(self.tokens[i] for i in ids if i != self.blank_id)

    def ctc_collapse(self, ids: list[int]) -> str:
        """Greedy CTC: merge repeats, then drop blanks.

        Examples:
            >>> v = CharVocab()
            >>> v.ctc_collapse([3, 3, 0, 3, 1, 1, 0])
            'aa '
        """
        out, prev = [], None
        for i in ids:
            if i != prev and i != self.blank_id:
                out.append(self.tokens[i])
            prev = i
        return "".join(out)
