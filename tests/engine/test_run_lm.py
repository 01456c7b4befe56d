"""``avtoolkit run grid_lm``: a language model trained from a recipe on GRID s1's real transcripts.

One short run (module fixture) serves the tests: its held-out perplexity beats letter
frequencies, it resumes like every run, its checkpoint is a ``decoding.lm`` that moves the joint
search, and it is refused where an ASR checkpoint is expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
import torch

import toy
from avtoolkit.cli.main import main
from avtoolkit.data.text import CHARACTERS
from avtoolkit.decoding.joint_search import JointDecoder, StateScorer, TokenConstraint, joint_beam_search
from avtoolkit.engine import run_recipe
from avtoolkit.errors import UsageError
from avtoolkit.models.checkpoint import read_checkpoint
from avtoolkit.models.stepwise_lm import StepwiseLM, load_lm
from avtoolkit.objectives.language_model import unigram_perplexity

GRID_S1 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "grid_s1"
SHORT = [f"data.root={GRID_S1}", "trainer.max_epochs=4", "trainer.progress_bar=false", "logging.plots=false"]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny LSTM steps: a second thread only adds contention
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    if not (GRID_S1 / "alignments").is_dir():
        pytest.skip(f"GRID s1 not found at {GRID_S1}")
    run_dir = tmp_path_factory.mktemp("lm") / "grid_lm"
    torch.set_num_threads(1)
    return run_dir, run_recipe("grid_lm", SHORT, run_dir=run_dir)


def test_the_run_beats_a_unigram_on_held_out_grid_sentences(lm_run) -> None:
    from avtoolkit.datasets.grid.transcripts import GridText

    run_dir, metrics = lm_run
    assert set(metrics) == {"test/perplexity", "test/loss"}
    data = GridText(root=str(GRID_S1), split_fractions={"train": 0.8, "val": 0.1, "test": 0.1})
    test_texts = {s.text for s in data.splits["test"].sentences}
    # the LM never saw a test sentence: GRID s1 repeats none, and the split is the ASR recipes'
    assert not test_texts & {s.text for s in data.splits["train"].sentences} and len(test_texts) > 50
    with_end = {split: [[*ids, 0] for ids in data.splits[split].ids] for split in ("train", "test")}
    unigram = unigram_perplexity(with_end["train"], with_end["test"], len(CHARACTERS))
    assert metrics["test/perplexity"] < unigram / 4, (metrics, unigram)  # ~1.6 against ~17
    result = json.loads((run_dir / "results.json").read_text())
    assert result["monitor"] == "val/perplexity" and result["monitor_mode"] == "min"
    assert result["metrics"]["test/perplexity"] == pytest.approx(metrics["test/perplexity"])


def test_resume_continues_exactly(lm_run, tmp_path: Path) -> None:
    straight_dir, straight = lm_run
    run_recipe("grid_lm", SHORT, run_dir=tmp_path / "split", callbacks=[toy.StopAfter(2)])
    assert read_checkpoint(tmp_path / "split/checkpoints/last.ckpt")["epoch"] == 1
    assert main(["run", "--resume", str(tmp_path / "split")]) == 0
    resumed = json.loads((tmp_path / "split/results.json").read_text())["metrics"]
    assert resumed == pytest.approx(straight, abs=1e-6)


def test_the_checkpoint_fused_in_the_joint_search_turns_its_choice(lm_run) -> None:
    # CTC alone slightly prefers "nib" over "bin"; every GRID sentence starts with bin, lay, place
    # or set, so the run's LM turns the search to "bin" at weight 1 and changes nothing at 0 (as the
    # CharLSTMLM's test in tests/decoding/test_lm_fusion.py checks).
    run_dir, _ = lm_run
    lm = load_lm(run_dir / "checkpoints/best.ckpt", CHARACTERS)
    assert isinstance(lm, StepwiseLM)
    b, i, n = (CHARACTERS.index(c) for c in "bin")
    ctc = torch.full((3, len(CHARACTERS)), -6.0)
    for t, (preferred, other) in enumerate([(n, b), (i, i), (b, n)]):
        ctc[t, preferred], ctc[t, other] = 1.0, 0.8
    ctc = ctc.log_softmax(-1)
    kw = {"beam_size": 8, "ctc_weight": 1.0, "constraint": TokenConstraint.from_words(["bin", "nib"], CHARACTERS)}
    plain = joint_beam_search(ctc, None, nbest=8, **kw)
    fused = joint_beam_search(ctc, None, lm=StateScorer(lm), lm_weight=1.0, **kw)
    off = joint_beam_search(ctc, None, lm=StateScorer(lm), lm_weight=0.0, **kw)
    assert plain[0].tokens == [n, i, b] and off[0].tokens == [n, i, b]
    assert fused[0].tokens == [b, i, n]
    ctc_bin = next(h.score for h in plain if h.tokens == [b, i, n])
    assert fused[0].score == pytest.approx(ctc_bin + lm.sentence_log_prob([b, i, n]), abs=1e-4)


def test_decoding_lm_takes_the_run_checkpoint_and_refuses_other_tokens(lm_run) -> None:
    from avtoolkit.models.heads.hybrid import HybridCTCAttentionHead

    run_dir, _ = lm_run
    head = HybridCTCAttentionHead(input_dim=16, layers=1, heads=2, dim=16, ff_dim=32, decoder_dropout=0.0).eval()
    decoder = JointDecoder(head, CHARACTERS, beam_size=3, lm=str(run_dir / "checkpoints/best.ckpt"), lm_weight=0.5)
    assert isinstance(decoder.lm, StepwiseLM)
    other = [*CHARACTERS[:3], *reversed(CHARACTERS[3:])]  # the same size, other ids
    with pytest.raises(UsageError, match=r"decoding.lm: .*best.ckpt: the LM's tokens are not the model's \(id 3 is "
                                         r"'a' for the LM, 'z' for the model"):
        JointDecoder(head, other, lm=str(run_dir / "checkpoints/best.ckpt"), lm_weight=0.5)


def test_an_lm_of_sentencepiece_tokens_trains_and_is_refused_for_a_character_model(tmp_path: Path) -> None:
    import io

    import sentencepiece as spm

    lines = [f"{v} {c} at {w} now" for v in ("bin", "lay", "set") for c in ("blue", "red", "green", "white")
             for w in ("one", "two", "six", "nine")]
    (tmp_path / "texts.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(sentence_iterator=io.StringIO("\n".join(lines * 10)), model_prefix=str(tmp_path / "m"),
                                   vocab_size=32, hard_vocab_limit=False, model_type="unigram", minloglevel=2)
    data = (f"data={{name: text_file, path: {tmp_path / 'texts.txt'}, "
            f"tokens: {{kind: sentencepiece, model: {tmp_path / 'm.model'}}}}}")
    metrics = run_recipe("grid_lm", [data, "trainer.max_epochs=2", "trainer.progress_bar=false", "logging.plots=false"],
                         run_dir=tmp_path / "sp_lm")
    assert metrics["test/perplexity"] > 1.0
    pieces = read_checkpoint(tmp_path / "sp_lm/checkpoints/best.ckpt")["avtoolkit"]["vocabulary"]
    lm = load_lm(tmp_path / "sp_lm/checkpoints/best.ckpt", pieces)  # an ASR model of the same pieces takes it
    assert lm.vocab_size == len(pieces) != len(CHARACTERS) and pieces[0] == "<blank>"
    with pytest.raises(UsageError, match=rf"decoding.lm: .*best.ckpt: the LM's tokens are not the model's .*LM "
                                         rf"{len(pieces)} tokens .*model 29 tokens .*train the LM with the ASR "
                                         r"recipe's data.tokens"):
        load_lm(tmp_path / "sp_lm/checkpoints/best.ckpt", CHARACTERS)


def test_an_lm_checkpoint_is_refused_as_a_transcribe_checkpoint_pointing_to_lm(lm_run, capsys) -> None:
    run_dir, _ = lm_run
    assert main(["transcribe", "--checkpoint", str(run_dir / "checkpoints/best.ckpt"), "--audio", "clip.wav"]) == 2
    err = capsys.readouterr().err
    assert "holds a language_model model" in err and "--lm THIS.ckpt" in err and "decoding.lm" in err


@pytest.mark.parametrize("override, message", [
    ("data.video_size=64", "data.video_size: unexpected argument"),
    ("model.backends.0={name: transformer, layers: 1, heads: 2}",
     "model.backends.0: TransformerBackend sees the whole sentence"),
    ("data.name=grid", "model.encoders: the model reads text but dataset 'grid' yields audio, video"),
])
def test_a_key_that_does_not_fit_a_text_recipe_is_one_message_and_exit_2(override, message, tmp_path: Path,
                                                                         capsys) -> None:
    if not (GRID_S1 / "alignments").is_dir():
        pytest.skip(f"GRID s1 not found at {GRID_S1}")
    assert main(["run", "grid_lm", f"data.root={GRID_S1}", override, "--run-dir", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
