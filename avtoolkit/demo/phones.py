"""Phones, visemes and the demo lexicon: what each sound is and what the lips do for it.

Formant targets are the classic adult-male averages (Peterson & Barney 1952; Hillenbrand
et al. 1995), scaled per speaker. Visemes group phones the way real lipreading does: the
bilabials p/b/m share one mouth shape, f/v another, the alveolars t/d/n/s/z/l another,
and voicing is invisible, so the picture alone cannot tell "b" from "p" or "d" from "t"
while the sound can.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Viseme:
    """Lip and mouth shape targets, each in [0, 1].

    ``open`` is the jaw/lip opening, ``width`` the lip spreading, ``round`` the
    protrusion/rounding, ``teeth`` how visible the teeth are, ``tongue`` whether the tongue
    tip shows between the teeth.
    """

    open: float
    width: float
    round: float
    teeth: float = 0.0
    tongue: float = 0.0


#: Mouth shape classes; several phones share each (that is the point).
VISEMES: dict[str, Viseme] = {
    "rest": Viseme(0.04, 0.50, 0.15),
    "bilabial": Viseme(0.0, 0.48, 0.20),  # p b m
    "labiodental": Viseme(0.10, 0.55, 0.10, teeth=1.0),  # f v
    "dental": Viseme(0.22, 0.55, 0.10, teeth=0.8, tongue=1.0),  # th dh
    "alveolar": Viseme(0.22, 0.62, 0.10, teeth=0.9),  # t d n s z l
    "postalveolar": Viseme(0.24, 0.42, 0.65, teeth=0.7),  # sh zh ch jh
    "velar": Viseme(0.34, 0.52, 0.20, teeth=0.3),  # k g ng h: hardly visible
    "r": Viseme(0.20, 0.42, 0.55, teeth=0.3),
    "w": Viseme(0.10, 0.25, 0.95),
    "iy": Viseme(0.22, 0.92, 0.0, teeth=1.0),
    "ih": Viseme(0.34, 0.78, 0.05, teeth=0.8),
    "eh": Viseme(0.50, 0.72, 0.05, teeth=0.6),
    "ae": Viseme(0.66, 0.78, 0.0, teeth=0.5),
    "aa": Viseme(0.88, 0.55, 0.10, teeth=0.3),
    "ao": Viseme(0.70, 0.38, 0.60, teeth=0.2),
    "uh": Viseme(0.40, 0.42, 0.60, teeth=0.2),
    "uw": Viseme(0.20, 0.25, 0.95),
    "ah": Viseme(0.58, 0.56, 0.15, teeth=0.4),
    "er": Viseme(0.34, 0.45, 0.45, teeth=0.3),
    "ax": Viseme(0.38, 0.55, 0.15, teeth=0.3),
}


@dataclass(frozen=True)
class Phone:
    """Acoustic targets of one phone.

    Args:
        kind: ``vowel``, ``approximant``, ``nasal``, ``fricative``, ``stop`` or
            ``aspirate``.
        formants: F1, F2, F3 in Hz (adult male; scaled per speaker).
        voiced: vocal folds vibrate.
        frication: (low, high) Hz band of the frication noise, or None.
        noise_gain: loudness of the frication noise relative to a vowel.
        duration: mean duration in seconds at a normal speaking rate.
        viseme: key of :data:`VISEMES`.
        burst: (low, high) Hz band of a stop's release burst.
    """

    kind: str
    formants: tuple[float, float, float]
    voiced: bool
    viseme: str
    duration: float
    frication: tuple[float, float] | None = None
    noise_gain: float = 0.0
    burst: tuple[float, float] | None = None


def _v(f1: float, f2: float, f3: float, vis: str, dur: float = 0.095) -> Phone:
    return Phone("vowel", (f1, f2, f3), True, vis, dur)


PHONES: dict[str, Phone] = {
    # vowels
    "iy": _v(270, 2290, 3010, "iy"),
    "ih": _v(390, 1990, 2550, "ih", 0.075),
    "eh": _v(530, 1840, 2480, "eh", 0.08),
    "ae": _v(660, 1720, 2410, "ae", 0.10),
    "aa": _v(730, 1090, 2440, "aa", 0.10),
    "ao": _v(570, 840, 2410, "ao", 0.10),
    "uh": _v(440, 1020, 2240, "uh", 0.075),
    "uw": _v(300, 870, 2240, "uw"),
    "ah": _v(640, 1190, 2390, "ah", 0.08),
    "er": _v(490, 1350, 1690, "er", 0.09),
    "ax": _v(500, 1450, 2500, "ax", 0.05),
    # approximants
    "l": Phone("approximant", (360, 1050, 2700), True, "alveolar", 0.055),
    "r": Phone("approximant", (310, 1060, 1380), True, "r", 0.055),
    "w": Phone("approximant", (290, 610, 2150), True, "w", 0.05),
    "y": Phone("approximant", (260, 2070, 3020), True, "iy", 0.045),
    # nasals: low murmur, place shows in F2 (and on the lips only for m)
    "m": Phone("nasal", (250, 1000, 2200), True, "bilabial", 0.065),
    "n": Phone("nasal", (250, 1500, 2500), True, "alveolar", 0.06),
    "ng": Phone("nasal", (250, 2000, 2700), True, "velar", 0.06),
    # fricatives
    "f": Phone("fricative", (400, 1200, 2400), False, "labiodental", 0.09, (1200, 7500), 0.25),
    "v": Phone("fricative", (300, 1200, 2400), True, "labiodental", 0.07, (1200, 7500), 0.12),
    "th": Phone("fricative", (400, 1400, 2500), False, "dental", 0.09, (1500, 7500), 0.22),
    "dh": Phone("fricative", (300, 1400, 2500), True, "dental", 0.05, (1500, 7500), 0.10),
    "s": Phone("fricative", (400, 1700, 2600), False, "alveolar", 0.10, (4200, 7800), 0.75),
    "z": Phone("fricative", (300, 1700, 2600), True, "alveolar", 0.08, (4200, 7800), 0.40),
    "sh": Phone("fricative", (400, 1900, 2500), False, "postalveolar", 0.10, (2300, 6000), 0.80),
    "zh": Phone("fricative", (300, 1900, 2500), True, "postalveolar", 0.08, (2300, 6000), 0.40),
    "h": Phone("aspirate", (500, 1500, 2500), False, "velar", 0.055),
    # stops: closure, burst in the band, aspiration when voiceless
    "p": Phone("stop", (400, 900, 2300), False, "bilabial", 0.075, burst=(300, 2500)),
    "b": Phone("stop", (300, 900, 2300), True, "bilabial", 0.065, burst=(300, 2500)),
    "t": Phone("stop", (400, 1800, 2600), False, "alveolar", 0.07, burst=(3500, 7500)),
    "d": Phone("stop", (300, 1800, 2600), True, "alveolar", 0.06, burst=(3500, 7500)),
    "k": Phone("stop", (400, 1900, 2500), False, "velar", 0.075, burst=(1500, 3500)),
    "g": Phone("stop", (300, 1900, 2500), True, "velar", 0.065, burst=(1500, 3500)),
    # affricates: a stop released into a fricative
    "ch": Phone("stop", (400, 1900, 2500), False, "postalveolar", 0.11, (2300, 6000), 0.7, (2300, 6000)),
    "jh": Phone("stop", (300, 1900, 2500), True, "postalveolar", 0.09, (2300, 6000), 0.35, (2300, 6000)),
}

#: Diphthongs are synthesised as two vowel targets with a glide between them.
DIPHTHONGS: dict[str, tuple[str, str]] = {
    "ey": ("eh", "iy"),
    "ay": ("aa", "iy"),
    "aw": ("aa", "uw"),
    "ow": ("ao", "uw"),
    "oy": ("ao", "iy"),
}

_LETTERS = {
    "a": "ey", "b": "b iy", "c": "s iy", "d": "d iy", "e": "iy", "f": "eh f", "g": "jh iy",
    "h": "ey ch", "i": "ay", "j": "jh ey", "k": "k ey", "l": "eh l", "m": "eh m", "n": "eh n",
    "o": "ow", "p": "p iy", "q": "k y uw", "r": "aa r", "s": "eh s", "t": "t iy", "u": "y uw",
    "v": "v iy", "x": "eh k s", "y": "w ay", "z": "z iy",
}  # fmt: skip

#: Pronunciations (ARPAbet without stress) of every word the demo corpus speaks.
LEXICON: dict[str, str] = {
    # GRID commands, colours, prepositions, adverbs, digits
    "bin": "b ih n", "lay": "l ey", "place": "p l ey s", "set": "s eh t",
    "blue": "b l uw", "green": "g r iy n", "red": "r eh d", "white": "w ay t",
    "at": "ae t", "by": "b ay", "in": "ih n", "with": "w ih dh",
    "again": "ax g eh n", "now": "n aw", "please": "p l iy z", "soon": "s uw n",
    "zero": "z ih r ow", "one": "w ah n", "two": "t uw", "three": "th r iy", "four": "f ao r",
    "five": "f ay v", "six": "s ih k s", "seven": "s eh v ax n", "eight": "ey t", "nine": "n ay n",
    # LRW-style words (real LRW vocabulary entries)
    "about": "ax b aw t", "always": "ao l w ey z", "because": "b ih k ao z",
    "country": "k ah n t r iy", "family": "f ae m ax l iy", "money": "m ah n iy",
    "people": "p iy p ax l", "something": "s ah m th ih ng", "water": "w ao t er",
    "world": "w er l d", "against": "ax g eh n s t", "business": "b ih z n ax s",
    "change": "ch ey n jh", "every": "eh v r iy", "group": "g r uw p", "house": "h aw s",
    "major": "m ey jh er", "number": "n ah m b er", "police": "p ax l iy s", "think": "th ih ng k",
    # function words heard around an LRW word
    "the": "dh ax", "of": "ax v", "and": "ae n d", "to": "t ax", "is": "ih z", "that": "dh ae t",
    "it": "ih t", "for": "f er", "on": "aa n", "we": "w iy", "this": "dh ih s", "have": "h ae v",
    "they": "dh ey", "will": "w ih l", "more": "m ao r", "very": "v eh r iy",
    **_LETTERS,
}  # fmt: skip

#: LRW-layout vocabularies, in the order sizes take them (``words`` first N).
LRW_WORDS: list[str] = [
    "about", "money", "water", "people", "because", "family", "something", "always",
    "country", "world", "against", "business", "change", "every", "group", "house",
    "major", "number", "police", "think",
]  # fmt: skip

#: Words that surround an LRW word in its clip (LRW clips cut into running speech).
FILLER_WORDS: list[str] = [
    "the", "of", "and", "to", "is", "that", "it", "for", "on", "we", "this", "have",
    "they", "will", "more", "very", "at", "in", "with", "now", "soon", "set", "red",
]  # fmt: skip



def pronounce(word: str) -> list[str]:
    """Phones of ``word`` with diphthongs split into their two vowel targets.

    Raises:
        KeyError: the word is not in :data:`LEXICON` (named in the message).

    Examples:
        >>> pronounce("five")
        ['f', 'aa', 'iy', 'v']
    """
    try:
        arpabet = LEXICON[word]
    except KeyError:
        raise KeyError(f"demo lexicon has no pronunciation for {word!r}") from None
    phones: list[str] = []
    for p in arpabet.split():
        phones.extend(DIPHTHONGS.get(p, (p,)))
    return phones
