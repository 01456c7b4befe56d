"""A language-model recipe model stepped one token at a time gives the whole-sentence pass's log-probabilities."""

from __future__ import annotations

import pytest
import torch

from avtoolkit.data.text import CHARACTERS
from avtoolkit.errors import UsageError
from avtoolkit.models.assemble import assemble
from avtoolkit.models.lm import CharLSTMLM
from avtoolkit.models.stepwise_lm import StepwiseLM, load_lm

LM = {"encoders": {"text": {"name": "token_embedding", "dim": 12}},
      "backends": [{"name": "lstm", "hidden": 16, "layers": 2}, {"name": "lstm", "hidden": 8}],
      "head": {"name": "lm"}}


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return assemble(LM).eval()


def test_stepwise_log_probs_equal_the_whole_sentence_pass() -> None:
    model = _model()
    lm = StepwiseLM(model, CHARACTERS)
    sentences = [[4, 5, 1, 6], [7, 8]]  # the second is padded in the whole-batch pass
    text = torch.zeros(2, 5, dtype=torch.long)
    for i, s in enumerate(sentences):
        text[i, 1: len(s) + 1] = torch.tensor(s)
    with torch.no_grad():
        full = model({"text": text, "text_lengths": torch.tensor([5, 3])})["log_probs"]
        # a beam of three rows: the start token broadcast, then rows picked as a search picks survivors
        logp, state = lm.step_state(lm.init_state(), torch.zeros(1, dtype=torch.long))
        torch.testing.assert_close(logp[0], full[0, 0], atol=1e-5, rtol=0)
        state = lm.select_state(state, torch.tensor([0, 0]))
        for t in range(4):
            fed = torch.tensor([sentences[0][t], sentences[1][t] if t < 2 else 0])
            logp, state = lm.step_state(state, fed)
            torch.testing.assert_close(logp[0], full[0, t + 1], atol=1e-5, rtol=0)
            if t < 2:
                torch.testing.assert_close(logp[1], full[1, t + 1], atol=1e-5, rtol=0)
            state = lm.select_state(state, torch.tensor([0, 1]))
    assert lm.sentence_log_prob(sentences[0]) == pytest.approx(
        float(sum(full[0, t, tok] for t, tok in enumerate([*sentences[0], 0]))), abs=1e-5)


def test_a_model_that_cannot_step_is_refused() -> None:
    bidirectional = assemble({**LM, "backends": [{"name": "lstm", "hidden": 8, "bidirectional": True}]})
    with pytest.raises(ValueError, match="one token at a time"):
        StepwiseLM(bidirectional, CHARACTERS)


def test_load_lm_reads_the_old_pt_and_names_decoding_lm_when_it_cannot(tmp_path) -> None:
    CharLSTMLM(len(CHARACTERS), dim=8).save(tmp_path / "old.pt")
    assert isinstance(load_lm(tmp_path / "old.pt", CHARACTERS), CharLSTMLM)
    with pytest.raises(UsageError, match=r"decoding.lm: .*old.pt: the LM has 29 tokens, the model 5"):
        load_lm(tmp_path / "old.pt", CHARACTERS[:5])
    with pytest.raises(UsageError, match=r"decoding.lm: .*missing.ckpt: no such file; give a language model run"):
        load_lm(tmp_path / "missing.ckpt", CHARACTERS)
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(UsageError, match=r"decoding.lm: .*notes.ckpt: not a PyTorch checkpoint"):
        load_lm(tmp_path / "notes.ckpt", CHARACTERS)
    torch.save({"w": torch.zeros(1)}, tmp_path / "weights.pt")
    with pytest.raises(UsageError, match=r"decoding.lm: .*weights.pt: not a language model"):
        load_lm(tmp_path / "weights.pt", CHARACTERS)
