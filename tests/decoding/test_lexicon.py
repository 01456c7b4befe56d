"""Lexicon files: the decoder's format, the GRID word list, and beam search restricted to it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.errors import UsageError
from avtoolkit.decoding.ctc_search import build_decoder
from avtoolkit.data.grid_grammar import GRID_SLOTS, GRID_WORDS
from avtoolkit.decoding.lexicon import lexicon_file, lexicon_line, write_lexicon


def test_grid_has_its_51_words_in_six_slots() -> None:
    assert len(GRID_WORDS) == len(set(GRID_WORDS)) == 51
    assert [len(GRID_SLOTS[s]) for s in ("command", "colour", "preposition", "letter", "digit", "adverb")] \
        == [4, 4, 4, 25, 10, 4]
    assert "w" not in GRID_SLOTS["letter"] and {"bin", "white", "with", "zero", "please"} <= set(GRID_WORDS)


def _emissions(text: str, sharp: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs that spell ``text`` one character per frame, blanks between repeats."""
    vocab = CharVocab()
    ids: list[int] = []
    for c in text:
        if ids and ids[-1] == vocab.encode(c)[0]:
            ids.append(0)
        ids.append(vocab.encode(c)[0])
    one_hot = torch.nn.functional.one_hot(torch.tensor([ids]), len(CHARACTERS)).float()
    return torch.log_softmax(one_hot * sharp, -1), torch.tensor([len(ids)])


def test_beam_search_with_the_grid_lexicon_emits_only_grid_words(tmp_path: Path) -> None:
    lexicon = write_lexicon(GRID_WORDS, tmp_path / "grid.txt")
    # "blua" is no word; the characters are clear, so greedy keeps it as it is.
    log_probs, lengths = _emissions("bin blua at f two now", sharp=3.0)
    assert build_decoder({"name": "greedy"}, CHARACTERS)(log_probs, lengths) == ["bin blua at f two now"]
    beam = build_decoder({"name": "beam", "beam_size": 20, "lexicon": lexicon}, CHARACTERS)
    assert beam(log_probs, lengths) == ["bin blue at f two now"]


def test_a_clip_ending_on_a_letter_keeps_its_last_word(tmp_path: Path) -> None:
    """flashlight emits a word only when a separator follows it; CTC output ends in blanks, not a space."""
    beam = build_decoder({"name": "beam", "beam_size": 20, "lexicon": write_lexicon(GRID_WORDS, tmp_path / "g.txt")},
                         CHARACTERS)
    short, n_short = _emissions("lay red by g five soon")  # no space after "soon", as in training targets
    long, n_long = _emissions("set white with p two please")
    batch = torch.cat([torch.cat([short, long[:, short.shape[1]:]], 1), long])  # padded with another clip
    assert beam(batch, torch.cat([n_short, n_long])) == ["lay red by g five soon", "set white with p two please"]


def test_lines_are_in_the_decoders_format_and_bad_words_are_refused(tmp_path: Path) -> None:
    path = write_lexicon(["bin", "don't", "bin"], tmp_path / "sub" / "lex.txt")
    assert path.read_text().splitlines() == ["bin b i n |", "don't d o n ' t |"]
    with pytest.raises(ValueError, match="'2'"):
        lexicon_line("b2")
    with pytest.raises(ValueError, match="empty"):
        lexicon_line("")


def test_lexicon_file_takes_a_file_or_a_built_in_name(tmp_path: Path) -> None:
    own = tmp_path / "grid"  # a file named like the built-in list wins over it
    own.write_text("bin b i n |\n")
    assert lexicon_file(own, tmp_path / "out") == own
    written = lexicon_file("grid", tmp_path / "out")
    assert written.parent == tmp_path / "out" and len(written.read_text().splitlines()) == 51
    with pytest.raises(UsageError, match="grid"):
        lexicon_file("timit", tmp_path / "out")
