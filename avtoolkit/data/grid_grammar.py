"""GRID's sentence grammar, written once: six slots, their words, and the clip-id letter of each word.

The GRID audio-visual corpus (Cooke et al., JASA 2006) has every talker read sentences of the
grammar ``command colour preposition letter digit adverb`` ("bin blue at f two now"). The
letter slot has every letter but w, which has three syllables. A clip id spells its sentence
with one character per slot (``bbaf2n``): a word's first letter, except the digits (``z`` for
zero, ``1`` to ``9`` for the others).

The layout reader (clip ids, the word-mode classes), the lexicon and grammar decoders, the demo
corpus and the pocketsphinx benchmark all read the grammar from here. Torch-free.

Examples:
    >>> SLOT_NAMES[0], GRID_SLOTS["command"], len(GRID_WORDS), len(VOCABULARY)
    ('command', ('bin', 'lay', 'place', 'set'), 51, 51)
    >>> [ID_CODES[i][c] for i, c in enumerate("bbaf2n")]
    ['bin', 'blue', 'at', 'f', 'two', 'now']
"""

from __future__ import annotations

__all__ = ["GRID_SLOTS", "GRID_WORDS", "ID_CODES", "SLOT_NAMES", "VOCABULARY"]

#: the slot names of GRID's grammar, in sentence order.
SLOT_NAMES: tuple[str, ...] = ("command", "colour", "preposition", "letter", "digit", "adverb")

#: slot name -> its words, in sentence order.
GRID_SLOTS: dict[str, tuple[str, ...]] = {
    "command": ("bin", "lay", "place", "set"),
    "colour": ("blue", "green", "red", "white"),
    "preposition": ("at", "by", "in", "with"),
    "letter": tuple("abcdefghijklmnopqrstuvxyz"),  # no w: it has three syllables
    "digit": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "adverb": ("again", "now", "please", "soon"),
}

#: the 51 words of GRID, in slot order.
GRID_WORDS: tuple[str, ...] = tuple(w for words in GRID_SLOTS.values() for w in words)

#: GRID's 51 words, sorted: the word-mode class list.
VOCABULARY: list[str] = sorted(set(GRID_WORDS))


def _id_code(slot: str, index: int, word: str) -> str:
    if slot == "digit":
        return "z" if index == 0 else str(index)
    return word[0]


#: per slot (sentence order), the clip-id character -> the word it stands for.
ID_CODES: tuple[dict[str, str], ...] = tuple(
    {_id_code(slot, i, w): w for i, w in enumerate(GRID_SLOTS[slot])} for slot in SLOT_NAMES
)
