"""The character LM: it learns GRID's sentences (held-out perplexity falls) and fusion pulls the search its way."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from avtoolkit.data.text import CHARACTERS
from avtoolkit.decoding.joint_search import JointDecoder, StateScorer, TokenConstraint, decoder_scorer, joint_beam_search
from avtoolkit.models.heads.hybrid import HybridCTCAttentionHead
from avtoolkit.models.lm import CharLSTMLM, encode, grid_transcripts, train_lm

@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny LSTM steps: a second thread only adds contention on a shared 2-core machine (10x slower there).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


GRID_S1 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "grid_s1" / "alignments"


def test_the_lm_lowers_perplexity_on_held_out_grid_text(tmp_path: Path) -> None:
    if not GRID_S1.is_dir():
        pytest.skip(f"GRID s1 alignments not found at {GRID_S1}")
    texts = grid_transcripts(GRID_S1)
    assert len(texts) == 900 and texts[0] == "bin blue at f two now"
    train, held_out = texts[:400], texts[-100:]  # files sorted by id: the held-out ids are never trained on
    untrained = CharLSTMLM(len(CHARACTERS), dim=64).eval()
    lm = train_lm(train, CHARACTERS, epochs=6, dim=64, lr=1e-2, batch_size=16, seed=0)
    before, after = untrained.perplexity(held_out), lm.perplexity(held_out)
    # A unigram model of the training characters (what frequencies alone give) as the bar to beat:
    # the LM must have learnt spelling and word order, not just which letters are common.
    index = {t: i for i, t in enumerate(CHARACTERS)}
    counts = torch.ones(len(CHARACTERS))
    for t in train:
        for i in [*encode(t, index), 0]:
            counts[i] += 1
    uni = counts.log() - counts.sum().log()
    ids = [[*encode(t, index), 0] for t in held_out]
    unigram = math.exp(-sum(float(uni[s].sum()) for s in ids) / sum(len(s) for s in ids))
    assert before > 20 and after < unigram / 2, (before, unigram, after)
    lm.save(tmp_path / "lm.pt")
    assert CharLSTMLM.load(tmp_path / "lm.pt").perplexity(held_out) == pytest.approx(after, rel=1e-6)
    # the stepwise state gives the same probabilities as the whole-sentence pass
    ids = encode(held_out[0], {t: i for i, t in enumerate(CHARACTERS)})
    lp, state = lm.step_state(lm.init_state(), torch.tensor([0]))
    total = 0.0
    with torch.no_grad():
        for t in [*ids, 0]:
            total += float(lp[0, t])
            lp, state = lm.step_state(state, torch.tensor([t]))
    assert total == pytest.approx(lm.sentence_log_prob(ids), abs=1e-3)


def test_fusion_moves_the_search_to_the_sentence_the_lm_prefers(tmp_path: Path) -> None:
    # Two frames, two words allowed ("ab", "ba"): CTC alone slightly prefers "ab"; an LM trained only
    # on "ba" turns the result to "ba" at weight 1, and at weight 0 changes nothing.
    tokens = ["<blank>", " ", "a", "b"]
    lm = train_lm(["ba"] * 16, tokens, epochs=40, dim=16, seed=0)
    words = TokenConstraint.from_words(["ab", "ba"], tokens)
    ctc = torch.log_softmax(torch.tensor([[-2.0, -4.0, 1.0, 0.8], [-2.0, -4.0, 0.8, 1.0]]), -1)
    kw = {"beam_size": 8, "ctc_weight": 1.0, "constraint": words}
    plain = joint_beam_search(ctc, None, nbest=8, **kw)
    fused = joint_beam_search(ctc, None, lm=StateScorer(lm), lm_weight=1.0, **kw)
    off = joint_beam_search(ctc, None, lm=StateScorer(lm), lm_weight=0.0, **kw)
    assert plain[0].tokens == [2, 3] and off[0].tokens == [2, 3]
    assert fused[0].tokens == [3, 2]
    # the fused score is the CTC score plus lm_weight times the LM's sentence log-probability
    ctc_ba = next(h.score for h in plain if h.tokens == [3, 2])
    assert fused[0].score == pytest.approx(ctc_ba + lm.sentence_log_prob([3, 2]), abs=1e-4)


def test_a_saved_lm_plugs_into_the_joint_decoder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    lm = train_lm(["bin blue"] * 4, CHARACTERS, epochs=2, dim=16)
    lm.save(tmp_path / "lm.pt")
    head = HybridCTCAttentionHead(input_dim=16, layers=1, heads=2, dim=16, ff_dim=32, decoder_dropout=0.0).eval()
    out = head(torch.randn(1, 12, 16), torch.tensor([12]), {})
    decoder = JointDecoder(head, CHARACTERS, beam_size=3, lm=str(tmp_path / "lm.pt"), lm_weight=0.5)
    (text, score), = decoder.decode(out)
    plain = joint_beam_search(out["log_probs"][0], decoder_scorer(head, out["memory"][:1]), beam_size=3)
    assert isinstance(text, str) and score != pytest.approx(plain[0].score)
    with pytest.raises(ValueError, match="tokens"):
        JointDecoder(head, CHARACTERS[:5], lm=lm, lm_weight=0.5)


def test_the_transcriber_fuses_an_lm_file_the_decoding_section_names(tmp_path: Path) -> None:
    from avtoolkit import build_model
    from avtoolkit.errors import UsageError
    from avtoolkit.inference.transcriber import Transcriber
    from avtoolkit.recipe import load_recipe

    small = ["model.encoders.audio={name: audio_cnn, channels: [8, 8, 8], hidden_dim: 32, time_subsampling: 1}",
             "model.backends=[]", "model.head={name: hybrid_ctc_attention, layers: 1, heads: 2, dim: 32, ff_dim: 64}"]
    torch.manual_seed(0)
    recipe = load_recipe("recipes/grid_audio_hybrid.yaml", small).tree
    model = build_model(recipe).eval()
    train_lm(["bin blue at a one now"] * 4, CHARACTERS, epochs=2, dim=16).save(tmp_path / "lm.pt")
    asr = Transcriber(model, CHARACTERS, ["audio"], recipe,
                      decoding={"name": "joint", "lm": str(tmp_path / "lm.pt"), "lm_weight": 0.3})
    assert isinstance(asr.decode, JointDecoder) and asr.decode.lm is not None and asr.decode.lm_weight == 0.3
    text = asr.transcribe(audio=torch.randn(16000).numpy() * 0.1).transcript
    assert text == "" or len(text.split()) == 6  # the recipe's grammar still holds
    with pytest.raises(UsageError, match="decoding.lm"):
        Transcriber(model, CHARACTERS, ["audio"], recipe, decoding={"name": "joint", "lm": str(tmp_path / "no.pt")})
