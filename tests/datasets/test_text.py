"""The text datasets of language models: a transcript file, and GRID's transcripts split as its clips are."""

from __future__ import annotations

from pathlib import Path

import pytest

from avtoolkit.datasets._text import TextDataError
from avtoolkit.datasets.text.datamodule import TranscriptFile

GRID_S1 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "grid_s1"
SENTENCES = [f"Bin {c} at {w} now." for c in ("blue", "red", "green", "white") for w in ("one", "two", "six", "nine")]


def _file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_transcript_file_is_split_by_sentence_and_batched_for_next_token_prediction(tmp_path: Path) -> None:
    path = _file(tmp_path, SENTENCES + ["", *SENTENCES[:4]])  # a blank line and repeats
    dm = TranscriptFile(str(path), split_fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    texts = {split: [s.text for s in dm.splits[split].sentences] for split in ("train", "val", "test")}
    assert sum(map(len, texts.values())) == 20 and "bin blue at one now" in sum(texts.values(), [])
    # a repeated sentence sits in one split only, so no test sentence is trained on
    assert not set(texts["test"]) & set(texts["train"]) and not set(texts["val"]) & set(texts["train"])
    again = TranscriptFile(str(path), split_fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    assert [s.text for s in again.splits["test"].sentences] == texts["test"]
    batch = next(iter(dm.train_dataloader()))
    first = dm.vocab.encode(batch["texts"][0])
    assert batch["text"][0, : len(first) + 1].tolist() == [0, *first]
    assert batch["targets"][0, : len(first) + 1].tolist() == [*first, 0]
    assert batch["text_lengths"][0] == batch["target_lengths"][0] == len(first) + 1
    assert dm.modalities == ["text"] and dm.vocabulary[0] == "<blank>"


def test_a_missing_file_or_a_line_without_a_token_names_it(tmp_path: Path) -> None:
    with pytest.raises(TextDataError, match=r"data.path: .*nothing.txt: no such transcript file"):
        TranscriptFile(str(tmp_path / "nothing.txt"))
    with pytest.raises(TextDataError, match=r"texts.txt:3: the line has no token of the vocabulary"):
        TranscriptFile(str(_file(tmp_path, [*SENTENCES[:2], "?!...", *SENTENCES[2:]])))
    with pytest.raises(TextDataError, match=r"texts.txt:2: characters outside the vocabulary \(data.tokens\) '4'"):
        TranscriptFile(str(_file(tmp_path, [SENTENCES[0], "bin blue at 4 now", *SENTENCES[1:]])))
    with pytest.raises(TextDataError, match="the val split has no sentence"):
        TranscriptFile(str(_file(tmp_path, SENTENCES[:1])))


def test_the_cli_refuses_a_bad_transcript_file_before_writing_anything(tmp_path: Path, capsys) -> None:
    from avtoolkit.cli.main import main

    path = _file(tmp_path, [*SENTENCES, "§§"])
    args = ["run", "grid_lm", "data={name: text_file, path: " + str(path) + "}", "--run-dir", str(tmp_path / "r")]
    assert main(args) == 2
    assert f"{path}:17: the line has no token of the vocabulary" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_grid_text_splits_exactly_as_the_grid_dataset_splits_its_clips() -> None:
    if not (GRID_S1 / "alignments").is_dir():
        pytest.skip(f"GRID s1 not found at {GRID_S1}")
    from avtoolkit.datasets.grid.datamodule import GridDataModule
    from avtoolkit.datasets.grid.transcripts import GridText

    for settings in ({"split": "hash", "split_fractions": {"train": 0.8, "val": 0.1, "test": 0.1}},
                     {"split": "overlapped", "test_per_speaker": 100, "max_clips": {"train": 300}}):
        text = GridText(root=str(GRID_S1), **settings)
        clips = GridDataModule(root=str(GRID_S1), **settings).split_clips()
        for split in ("train", "val", "test"):
            assert [s.id for s in text.splits[split].sentences] == [c.key for c in clips[split]]
            assert [s.text for s in text.splits[split].sentences] == [c.transcript for c in clips[split]]


def test_sentencepiece_tokens_are_the_vocabulary_of_a_text_dataset(tmp_path: Path) -> None:
    import io

    import sentencepiece as spm

    lines = [f"bin {c} at {w} now" for c in ("blue", "red", "green", "white") for w in ("one", "two", "six", "nine")]
    spm.SentencePieceTrainer.train(sentence_iterator=io.StringIO("\n".join(lines * 20)), model_prefix=str(tmp_path / "m"),
                                   vocab_size=20, model_type="unigram", minloglevel=2)
    dm = TranscriptFile(str(_file(tmp_path, lines)), split_fractions={"train": 0.5, "val": 0.25, "test": 0.25},
                        tokens={"kind": "sentencepiece", "model": str(tmp_path / "m.model")})
    assert dm.vocabulary[0] == "<blank>" and len(dm.vocabulary) != 29
    batch = next(iter(dm.val_dataloader()))
    ids = dm.vocab.encode(batch["texts"][0])
    assert batch["text"][0, : len(ids) + 1].tolist() == [0, *ids] and max(ids) < len(dm.vocabulary)
