"""Joint CTC/attention beam search against exhaustive scoring, and the grammar constraint."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from avtoolkit.data.grid_grammar import GRID_SLOTS
from avtoolkit.data.text import CHARACTERS
from avtoolkit.decoding.grammar import in_grammar
from avtoolkit.decoding.joint_search import (EOS, CTCPrefixScorer, JointDecoder, PrefixScorer, TokenConstraint,
                                              decoder_scorer, greedy_attention, joint_beam_search, tokens_text)
from avtoolkit.models.heads.hybrid import HybridCTCAttentionHead


def _tiny(vocab: int = 4, frames: int = 4, seed: int = 0) -> tuple[torch.Tensor, HybridCTCAttentionHead, torch.Tensor]:
    torch.manual_seed(seed)
    head = HybridCTCAttentionHead(input_dim=8, vocab_size=vocab, layers=1, heads=2, dim=8, ff_dim=16,
                                  decoder_dropout=0.0).eval()
    ctc = torch.log_softmax(2.0 * torch.randn(frames, vocab), -1)
    memory = torch.randn(1, frames, 8)
    return ctc, head, memory


def _exact_score(y: list[int], ctc: torch.Tensor, head: HybridCTCAttentionHead, memory: torch.Tensor,
                 ctc_weight: float, length_bonus: float) -> float:
    """The joint score of one whole sequence: teacher-forced decoder plus torch's CTC loss."""
    with torch.no_grad():
        prev = torch.tensor([[EOS, *y]])
        att = head.decode(memory, None, prev)[0].double()
        att_score = float(att.gather(1, torch.tensor([*y, EOS])[:, None]).sum())
        ctc_score = -float(F.ctc_loss(ctc.double()[:, None], torch.tensor([y], dtype=torch.long),
                                      torch.tensor([ctc.shape[0]]), torch.tensor([len(y)]), blank=0,
                                      reduction="sum", zero_infinity=False))
    return (1 - ctc_weight) * att_score + ctc_weight * ctc_score + length_bonus * len(y)


# cached decoder states in every case; the prefix re-run fallback (a decoder with decoder_step only) in one
@pytest.mark.parametrize(("ctc_weight", "length_bonus", "seed", "incremental"),
                         [(0.3, 0.0, 0, True), (0.5, 0.7, 1, True), (1.0, 0.2, 2, True), (0.0, 0.0, 3, True),
                          (0.5, 0.7, 1, False)])
def test_a_wide_beam_finds_the_best_sequence_of_exhaustive_scoring(ctc_weight: float, length_bonus: float,
                                                                     seed: int, incremental: bool) -> None:
    ctc, head, memory = _tiny(seed=seed)
    frames = ctc.shape[0]
    every = [list(s) for n in range(frames + 1) for s in itertools.product([1, 2, 3], repeat=n)]
    scores = {tuple(y): _exact_score(y, ctc, head, memory, ctc_weight, length_bonus) for y in every}
    best = max(scores, key=scores.get)
    with torch.no_grad():
        decoder = decoder_scorer(head, memory) if incremental else (lambda p: head.decoder_step(memory, p))
        hyps = joint_beam_search(ctc, decoder, beam_size=200, ctc_weight=ctc_weight,
                                 length_bonus=length_bonus, nbest=5)
    assert tuple(hyps[0].tokens) == best
    assert hyps[0].score == pytest.approx(scores[best], abs=1e-4)
    for h in hyps:  # every returned score is the exact score of its sequence
        assert h.score == pytest.approx(scores[tuple(h.tokens)], abs=1e-4)


def test_cached_decoder_states_give_the_full_recomputations_log_probabilities() -> None:
    torch.manual_seed(4)
    head = HybridCTCAttentionHead(input_dim=8, vocab_size=6, layers=2, heads=2, dim=8, ff_dim=16).eval()
    memory = torch.randn(1, 5, 8)
    prefixes = torch.tensor([[EOS, 3, 1, 4], [EOS, 2, 2, 5], [EOS, 5, 1, 1]])
    with torch.no_grad():
        state = head.init_state(memory)
        for i in range(prefixes.shape[1]):
            logp, state = head.step_state(state, prefixes[:, i])
            assert torch.allclose(logp, head.decoder_step(memory, prefixes[:, : i + 1]), atol=1e-5)
        # reordering (a beam's survivors, with repeats) keeps each row's own history
        order = torch.tensor([2, 2, 0])
        logp, _ = head.step_state(head.select_state(state, order), torch.tensor([1, 3, 2]))
        full = head.decoder_step(memory, torch.cat([prefixes[order], torch.tensor([[1], [3], [2]])], 1))
        assert torch.allclose(logp, full, atol=1e-5)


def test_greedy_attention_over_a_padded_batch_is_the_same_with_cached_states() -> None:
    torch.manual_seed(5)
    head = HybridCTCAttentionHead(input_dim=8, vocab_size=6, layers=1, heads=2, dim=8, ff_dim=16).eval()
    memory, lengths = torch.randn(3, 7, 8), torch.tensor([7, 4, 6])
    with torch.no_grad():
        cached = greedy_attention(decoder_scorer(head, memory, lengths), 3, lengths.tolist())
        rerun = greedy_attention(PrefixScorer(lambda p: head.decoder_step(memory, p, lengths)), 3, lengths.tolist())
    assert cached[0] == rerun[0]
    assert cached[1] == pytest.approx(rerun[1], abs=1e-5)


def test_pre_beam_scores_ctc_on_fewer_tokens_yet_every_returned_score_is_exact() -> None:
    # 8 tokens, pre-beam 3: CTC scores only each hypothesis's 3 best decoder tokens. That can only
    # prune (a sequence whose next token is outside the decoder's top 3 is never grown); the scores
    # of what it returns stay the exact joint scores.
    ctc, head, memory = _tiny(vocab=8, frames=5, seed=6)
    with torch.no_grad():
        full = joint_beam_search(ctc, decoder_scorer(head, memory), beam_size=6, ctc_weight=0.3, pre_beam=8, nbest=6)
        part = joint_beam_search(ctc, decoder_scorer(head, memory), beam_size=6, ctc_weight=0.3, pre_beam=3, nbest=6)
    assert part
    for h in part:
        assert h.score == pytest.approx(_exact_score(h.tokens, ctc, head, memory, 0.3, 0.0), abs=1e-4)
    # a narrower candidate set changes which hypotheses share the beam, so its best may differ
    # either way; at a pre-beam as wide as the vocabulary the search is the full one
    with torch.no_grad():
        wide = joint_beam_search(ctc, decoder_scorer(head, memory), beam_size=6, ctc_weight=0.3, pre_beam=100, nbest=6)
    assert [(h.tokens, round(h.score, 6)) for h in wide] == [(h.tokens, round(h.score, 6)) for h in full]


def test_prefix_probabilities_of_every_extension_match_summed_completions() -> None:
    ctc, _, _ = _tiny(frames=3)
    scorer = CTCPrefixScorer(ctc)
    r, _ = scorer.initial()
    psi, r_new = scorer.extend(r, torch.tensor([0]), torch.tensor([True]))
    # p(prefix c) = sum over every full sequence starting with c (at most 3 labels in 3 frames)
    for c in (1, 2, 3):
        total = torch.logsumexp(torch.tensor([
            -float(F.ctc_loss(ctc.double()[:, None], torch.tensor([[c, *rest]]), torch.tensor([3]),
                              torch.tensor([1 + len(rest)]), reduction="sum"))
            for n in range(3) for rest in itertools.product([1, 2, 3], repeat=n)]), 0)
        assert float(psi[0, c]) == pytest.approx(float(total), abs=1e-6)
    assert float(psi[0, 0]) == pytest.approx(float(ctc[:, 0].double().sum()), abs=1e-9)  # empty sentence: all blank


def test_the_grid_grammar_constraint_only_yields_grid_sentences() -> None:
    torch.manual_seed(0)
    head = HybridCTCAttentionHead(input_dim=16, layers=1, heads=2, dim=16, ff_dim=32, decoder_dropout=0.0).eval()
    decoder = JointDecoder(head, CHARACTERS, beam_size=4, ctc_weight=0.5, grammar="grid")
    frames = 40
    out = head(torch.randn(3, frames, 16), torch.tensor([frames, frames, 32]), {})
    texts = decoder(out)
    slots = tuple(GRID_SLOTS.values())
    assert all(in_grammar(t, slots) for t in texts), texts
    # too few frames for any GRID sentence: nothing rather than an out-of-grammar sentence
    short = head(torch.randn(1, 6, 16), torch.tensor([6]), {})
    assert decoder(short) == [""]


def test_a_lexicon_constraint_spells_only_its_words() -> None:
    c = TokenConstraint.from_words(["bin", "blue"], CHARACTERS)
    torch.manual_seed(1)
    ctc = torch.log_softmax(torch.randn(20, len(CHARACTERS)), -1)
    hyps = joint_beam_search(ctc, None, beam_size=8, ctc_weight=1.0, constraint=c, nbest=8)
    assert hyps
    for h in hyps:
        assert set(tokens_text(h.tokens, CHARACTERS).split()) <= {"bin", "blue"}
