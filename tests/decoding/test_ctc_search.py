"""Greedy and beam-search CTC decoding, with and without a lexicon and a KenLM model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.decoding.ctc_search import build_decoder

VOCAB = CharVocab()


def _emissions(text: str, frames: int, ambiguous: tuple[str, str] | None = None) -> torch.Tensor:
    """Log-probs spelling ``text`` one character per two frames; ``ambiguous=(said, rival)``
    makes the last occurrence of ``said`` slightly less likely than ``rival``."""
    logits = torch.full((1, frames, len(CHARACTERS)), -8.0)
    ids = []
    for c in text:
        ids += [VOCAB.encode(c)[0], 0]
    for t, i in enumerate(ids):
        logits[0, t, i] = 0.0
    for t in range(len(ids), frames):
        logits[0, t, 0] = 0.0
    if ambiguous:
        t = len(ids) - 1 - ids[::-1].index(VOCAB.encode(ambiguous[0])[0])
        logits[0, t, VOCAB.encode(ambiguous[0])[0]] = -0.4
        logits[0, t, VOCAB.encode(ambiguous[1])[0]] = 0.0
    return logits.log_softmax(-1)


def _write_arpa(path: Path) -> Path:
    # KenLM wants a tab between fields and at least bigrams.
    rows = ["\\data\\", "ngram 1=5", "ngram 2=3", "", "\\1-grams:",
            "-1.0\t<s>\t-0.3", "-1.0\t</s>", "-0.5\tbin\t-0.3", "-0.5\tblue\t-0.3", "-4.0\tblua\t-0.3",
            "", "\\2-grams:", "-0.1\t<s> bin", "-0.1\tbin blue", "-0.1\tblue </s>", "", "\\end\\", ""]
    path.write_text("\n".join(rows))
    return path


def test_greedy_respects_lengths_and_batch() -> None:
    a, b = _emissions("bin blue", 20), _emissions("at f", 20)
    log_probs = torch.cat([a, b])
    decode = build_decoder({"name": "greedy"}, CHARACTERS)
    assert decode(log_probs, torch.tensor([20, 20])) == ["bin blue", "at f"]
    # Frames past a sequence's length are padding and must not leak into the text.
    assert decode(log_probs, torch.tensor([6, 20])) == ["bin", "at f"]


def test_beam_lexicon_free_matches_greedy_on_clear_emissions() -> None:
    log_probs = _emissions("set white with p two soon", 60)
    lengths = torch.tensor([60])
    greedy = build_decoder(None, CHARACTERS)(log_probs, lengths)
    beam = build_decoder({"name": "beam", "beam_size": 8}, CHARACTERS)(log_probs, lengths)
    assert greedy == beam == ["set white with p two soon"]


def test_lexicon_and_kenlm_fix_a_misspelling(tmp_path: Path) -> None:
    log_probs = _emissions("bin blue", 20, ambiguous=("e", "a"))
    lengths = torch.tensor([20])
    assert build_decoder({"name": "beam"}, CHARACTERS)(log_probs, lengths) == ["bin blua"]
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("bin b i n |\nblue b l u e |\n")
    assert build_decoder({"name": "beam", "lexicon": str(lexicon)}, CHARACTERS)(log_probs, lengths) == ["bin blue"]
    # With "blua" in the lexicon only the language model prefers "blue".
    lexicon.write_text("bin b i n |\nblue b l u e |\nblua b l u a |\n")
    no_lm = build_decoder({"name": "beam", "lexicon": str(lexicon)}, CHARACTERS)
    assert no_lm(log_probs, lengths) == ["bin blua"]
    lm = _write_arpa(tmp_path / "words.arpa")
    with_lm = build_decoder({"name": "beam", "lexicon": str(lexicon), "lm": str(lm), "lm_weight": 2.0}, CHARACTERS)
    assert with_lm(log_probs, lengths) == ["bin blue"]


def test_bad_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="decoding.name"):
        build_decoder({"name": "viterbi"}, CHARACTERS)
    with pytest.raises(FileNotFoundError, match="decoding.lexicon"):
        build_decoder({"name": "beam", "lexicon": str(tmp_path / "missing.txt")}, CHARACTERS)
