"""Lexicon files for lexicon-constrained beam search, and the GRID corpus's 51 words.

flashlight-text's lexicon decoder (``decoding.lexicon``) reads one word per line followed by
its spelling in CTC tokens and the word separator: ``blue b l u e |``. Beam search then only
emits words of the lexicon. ``write_lexicon`` writes that file for any word list;
``lexicon_file`` turns a name of a built-in list (``grid``) or a path into a file to decode with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from avtoolkit.data.grid_grammar import GRID_WORDS
from avtoolkit.data.text import BLANK, CHARACTERS
from avtoolkit.errors import UsageError

#: Built-in word lists ``--lexicon NAME`` understands.
LEXICONS: dict[str, tuple[str, ...]] = {"grid": GRID_WORDS}
#: flashlight-text's word separator token (the space of our vocabulary).
SEPARATOR = "|"


def lexicon_line(word: str, tokens: Sequence[str] = CHARACTERS) -> str:
    """One lexicon entry: the word, its characters, and the separator.

    Raises:
        ValueError: the word is empty or has a character that is not a CTC token.

    Examples:
        >>> lexicon_line("blue")
        'blue b l u e |'
        >>> lexicon_line("don't")
        "don't d o n ' t |"
    """
    bad = sorted({c for c in word if c not in tokens or c in (" ", BLANK)})
    if not word or bad:
        raise ValueError(f"lexicon word {word!r}: " + (f"characters {bad} are not CTC tokens" if bad else "empty"))
    return f"{word} {' '.join(word)} {SEPARATOR}"


def write_lexicon(words: Iterable[str], path: str | os.PathLike[str], tokens: Sequence[str] = CHARACTERS) -> Path:
    """Writes a lexicon file for ``words`` (duplicates dropped, order kept) in the decoder's format.

    Args:
        words: the words beam search may emit.
        path: the file to write (folders are created).
        tokens: the CTC vocabulary the words are spelled in.

    Returns:
        ``path``.

    Raises:
        ValueError: a word cannot be spelled in ``tokens``.

    Examples:
        >>> import tempfile, pathlib
        >>> p = write_lexicon(GRID_WORDS, pathlib.Path(tempfile.mkdtemp()) / "grid.txt")
        >>> lines = p.read_text().splitlines()
        >>> len(lines), lines[0], lines[-1]
        (51, 'bin b i n |', 'soon s o o n |')
    """
    lines = [lexicon_line(w, tokens) for w in dict.fromkeys(words)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def lexicon_file(lexicon: str | os.PathLike[str], folder: str | os.PathLike[str],
                 tokens: Sequence[str] = CHARACTERS) -> Path:
    """A lexicon file to decode with: an existing file as it is, or a built-in list written into ``folder``.

    An existing file always wins over a built-in name, as a recipe file wins over a shipped
    recipe of the same name.

    Raises:
        UsageError: neither a file nor a built-in name.

    Examples:
        >>> import tempfile
        >>> lexicon_file("grid", tempfile.mkdtemp()).name
        'grid_lexicon.txt'
    """
    path = Path(lexicon)
    if path.is_file():
        return path
    words = LEXICONS.get(str(lexicon))
    if words is None:
        raise UsageError(f"--lexicon {lexicon}: no such file, and not a built-in word list "
                         f"({', '.join(LEXICONS)})")
    return write_lexicon(words, Path(folder) / f"{lexicon}_lexicon.txt", tokens)


def check_lexicon(path: str | os.PathLike[str], tokens: Sequence[str], key: str = "decoding.lexicon") -> Path:
    """``path`` when it reads as a lexicon of ``tokens`` (UTF-8 text, each line a word and its spelling),
    before flashlight-text is given it (it stops on a bad line with a bare ``RuntimeError``).

    Raises:
        UsageError: naming ``key``, the file and the first bad line.

    Examples:
        >>> import tempfile
        >>> bad = Path(tempfile.mkdtemp()) / "lex.txt"
        >>> _ = bad.write_bytes(bytes([0x80, 0xff, 0x00]))
        >>> check_lexicon(bad, CHARACTERS)
        Traceback (most recent call last):
        ...
        avtoolkit.errors.UsageError: decoding.lexicon .../lex.txt: not UTF-8 text (byte 0); is it a lexicon (lines 'word w o r d |')?
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{key} {path}: not UTF-8 text (byte {exc.start}); is it a lexicon "
                         f"(lines 'word w o r d {SEPARATOR}')?") from None
    known = {SEPARATOR, *tokens}
    words = 0
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        unknown = sorted(set(fields[1:]) - known)
        if len(fields) < 2 or "\x00" in line or unknown:
            why = (f"tokens {unknown[:5]} are not the model's" if unknown and len(fields) >= 2
                   else f"expected a word and its spelling, like 'blue b l u e {SEPARATOR}'")
            raise UsageError(f"{key} {path}:{number}: {why}, got {line[:60]!r}")
        words += 1
    if not words:
        raise UsageError(f"{key} {path}: holds no words (lines 'word w o r d {SEPARATOR}')")
    return path
