"""Slot-grammar beam search: only sentences of the grammar come out, the way pocketsphinx decodes GRID."""

from __future__ import annotations

import pytest
import torch

from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.errors import UsageError
from avtoolkit.decoding.ctc_search import build_decoder
from avtoolkit.decoding.grammar import grammar_slots, in_grammar


def _emissions(text: str, sharp: float = 8.0, faint: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs that spell ``text`` one character per frame, blanks between repeats, then
    ``faint`` spoken too softly to read: each of its characters a little less likely than blank."""
    vocab = CharVocab()

    def frames(chars: str) -> list[int]:
        ids: list[int] = []
        for c in chars:
            if ids and ids[-1] == vocab.encode(c)[0]:
                ids.append(0)
            ids.append(vocab.encode(c)[0])
        return ids

    clear = torch.nn.functional.one_hot(torch.tensor(frames(text)), len(CHARACTERS)).float() * sharp
    soft = torch.nn.functional.one_hot(torch.tensor(frames(faint), dtype=torch.long), len(CHARACTERS)).float() * 2
    soft[:, 0] += 2.5  # blank wins every frame by a little: read alone, the word is not there
    logits = torch.cat([clear, soft.reshape(-1, len(CHARACTERS))])[None]
    return torch.log_softmax(logits, -1), torch.tensor([logits.shape[1]])


def _decode(text: str, faint: str = "", **decoding) -> str:
    log_probs, lengths = _emissions(text, sharp=3.0, faint=faint)
    return build_decoder({"name": "beam", "beam_size": 50, **decoding}, CHARACTERS)(log_probs, lengths)[0]


def test_a_clear_grammatical_sentence_comes_out_as_it_is() -> None:
    assert _decode("lay red by g five soon", grammar="grid") == "lay red by g five soon"


def test_the_grammar_fixes_what_the_lexicon_alone_cannot() -> None:
    # The last word is spoken too softly: read alone, there is no sixth word; a GRID sentence
    # has six, the last an adverb, and the grammar takes the adverb the frames hint at.
    assert _decode("bin blue at f two ", faint="soon", lexicon=_lexicon()) == "bin blue at f two"
    assert _decode("bin blue at f two ", faint="soon", grammar="grid") == "bin blue at f two soon"


def _lexicon() -> str:
    import tempfile
    from pathlib import Path

    from avtoolkit.data.grid_grammar import GRID_WORDS
    from avtoolkit.decoding.lexicon import write_lexicon

    return str(write_lexicon(GRID_WORDS, Path(tempfile.mkdtemp()) / "grid.txt"))


def test_an_unknown_grammar_and_a_grammar_with_an_lm_are_refused(tmp_path) -> None:
    with pytest.raises(UsageError, match="decoding.grammar: 'gird'"):
        _decode("bin", grammar="gird")
    lm = tmp_path / "lm.arpa"
    lm.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\tbin\n\n\\end\\\n")
    with pytest.raises(ValueError, match="grammar and decoding.lm"):
        _decode("bin", grammar="grid", lm=str(lm))
