"""data.tokens: SentencePiece subwords beside characters, trained here on real GRID transcripts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from avtoolkit.data.tokens import SentencePieceVocab, make_vocab

ALIGNMENTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "grid_s1" / "alignments" / "s1"


def grid_sentences() -> list[str]:
    if not ALIGNMENTS.is_dir():
        pytest.skip(f"GRID s1 alignments not found at {ALIGNMENTS} (the shared data)")
    sentences = []
    for path in sorted(ALIGNMENTS.glob("*.align"))[:400]:
        words = [line.split()[2] for line in path.read_text().splitlines() if len(line.split()) == 3]
        sentences.append(" ".join(w for w in words if w not in ("sil", "sp")))
    return sentences


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sentencepiece as spm

    folder = tmp_path_factory.mktemp("spm")
    upper = "\n".join(s.upper() for s in grid_sentences())  # upper case, like auto_avsr's LRS3 units
    spm.SentencePieceTrainer.train(sentence_iterator=io.StringIO(upper), model_prefix=str(folder / "grid"),
                                   vocab_size=40, model_type="unigram", minloglevel=2)
    return folder / "grid.model"


def test_sentencepiece_tokens_round_trip_grid_sentences(spm_model: Path) -> None:
    vocab = make_vocab({"kind": "sentencepiece", "model": str(spm_model), "case": "upper"})
    assert isinstance(vocab, SentencePieceVocab) and vocab.tokens[0] == "<blank>"
    assert len(vocab) == 40 - 2 + 1  # the model's pieces less <s> and </s>, plus the blank
    sentences = grid_sentences()[:50]
    for text in sentences:
        ids = vocab.encode(text)
        assert 0 not in ids and " ".join(vocab.decode(ids).split()) == text
    # subwords: fewer tokens than characters, which is what a 25-fps CTC needs
    assert sum(len(vocab.encode(s)) for s in sentences) < 0.8 * sum(len(s) for s in sentences)
    # CTC collapsing reads the same ids back (a blank between doubled pieces)
    ids = vocab.encode(sentences[0])
    frames = [i for t in ids for i in (t, 0)]
    assert " ".join(vocab.ctc_collapse(frames).split()) == sentences[0]


def test_units_file_fixes_the_token_order(spm_model: Path, tmp_path: Path) -> None:
    base = SentencePieceVocab(spm_model)
    units = list(reversed(base.pieces))  # an ESPnet units file: one 'piece id' per line, any order
    (tmp_path / "units.txt").write_text("".join(f"{p} {i}\n" for i, p in enumerate(units, 1)), encoding="utf-8")
    vocab = SentencePieceVocab(spm_model, tmp_path / "units.txt", case="upper")
    assert vocab.pieces == units
    assert vocab.decode(vocab.encode("bin blue at f two now")).split() == "bin blue at f two now".split()
    (tmp_path / "bad.txt").write_text("<unk> 1\nNOTAPIECE 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:2: piece 'NOTAPIECE' is not in the SentencePiece model"):
        SentencePieceVocab(spm_model, tmp_path / "bad.txt")


def test_bad_token_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data.tokens.kind: unknown token kind 'bpe'"):
        make_vocab({"kind": "bpe"})
    with pytest.raises(ValueError, match="data.tokens.model: a sentencepiece token list needs"):
        make_vocab({"kind": "sentencepiece"})
    with pytest.raises(FileNotFoundError, match="data.tokens.model: no such SentencePiece model"):
        make_vocab({"kind": "sentencepiece", "model": str(tmp_path / "none.model")})
