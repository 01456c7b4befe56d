"""Joint CTC/attention beam search (hybrid models), with an optional grammar or lexicon constraint.

A hybrid model (head ``hybrid_ctc_attention``) has a CTC branch and an attention decoder on the
same encoder output. The search extends every hypothesis by every token at once and scores
each extension as ESPnet's joint decoding does (Watanabe et al., "Hybrid CTC/Attention
Architecture for End-to-End Speech Recognition", 2017)::

    score(y) = (1 - ctc_weight) * log p_att(y, eos | x) + ctc_weight * log p_ctc(y | x)
               + lm_weight * log p_lm(y, eos) + length_bonus * |y|

The CTC part of a growing prefix is its *prefix* probability (the probability that the CTC
output starts with it), computed for every hypothesis and every next token in one vectorised
pass: the forward recursion over frames is a linear recurrence, so it is a cumulative sum of
log-probabilities and one ``logcumsumexp`` instead of a loop over frames. Ending a hypothesis
(``eos``) swaps its prefix probability for its full CTC probability, so a finished hypothesis
carries exactly the score above. Token 0 is both the CTC blank and the decoder's start/end
token (ESPnet's convention too), so the vocabulary stays the CTC one.

Speed (``benchmarks/joint_search.py``): the decoder is fed one token per hypothesis per step
with its self-attention keys/values cached and the memory's cross-attention keys/values
projected once; all hypotheses go through one call; CTC prefix scoring runs only on each
hypothesis's ``pre_beam`` best tokens by the decoder (+ LM) score (ESPnet's partial scoring,
``int(1.5 * beam_size)`` by default), vectorised over hypotheses and candidates in log space.
Partial scoring only prunes: every returned score is still the exact joint score of its
sequence, but a sequence whose next token falls outside the decoder's top ``pre_beam`` is never
grown; with ``pre_beam`` at least the vocabulary size the search is the full one.

The decoder-step interface (what a decoder head, or a language model, offers the search):

* Incremental (preferred): ``init_state(memory [B, T, D] | None, memory_lengths [B] | None) ->
  state`` (nothing fed yet); ``step_state(state, tokens [N]) -> (log_probs [N, V], state)``
  feeds one token per hypothesis (the first call feeds the start token ``EOS`` and may broadcast
  a one-row state to ``N`` rows); ``select_state(state, index [N']) -> state`` keeps rows
  ``index`` (the beam's survivors, repeats allowed). The state is opaque to the search.
  :class:`StateScorer` drives it; ``hybrid_ctc_attention``, a language-model run
  (:class:`~avtoolkit.models.stepwise_lm.StepwiseLM`) and ``CharLSTMLM`` implement it.
* Fallback: ``decoder_step(memory, prefixes [N, L], memory_lengths=None) -> log_probs [N, V]``,
  the whole prefix (starting with ``EOS``) re-run every step (:class:`PrefixScorer`): slower
  (quadratic in length) but any decoder with that one method plugs in.

:func:`decoder_scorer` picks the first a head offers. Shallow fusion adds
``lm_weight * log p_lm(c | y)`` per token, the LM driven through the same interface.

A :class:`TokenConstraint` (a slot grammar such as GRID's, or any word list) masks, at each
step, the tokens that would leave every allowed sentence, and allows ``eos`` only where an
allowed sentence ends: every returned sentence is then one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import torch
from torch import Tensor

from avtoolkit.data.text import BLANK
from avtoolkit.recipe.schema import DecodingConfig, section

#: start/end-of-sentence id of the attention decoder: the CTC blank (never a decoder target).
EOS = 0
_NEG = float("-inf")

#: ``prefixes [N, L] -> log-probabilities [N, V]`` of each prefix's next token (prefixes start with eos).
DecoderStep = Callable[[Tensor], Tensor]


@dataclass
class Hypothesis:
    """A finished hypothesis: its token ids (no start/end token) and its joint score."""

    tokens: list[int]
    score: float


class TokenConstraint:
    """A finite automaton over token ids: which tokens may follow a prefix, and where a sentence may end.

    Built from word slots (:meth:`from_slots`: one word of each slot, in order, separated by
    one space) or a word list (:meth:`from_words`: one or more of its words). States are small
    integers; state 0 is the start.

    Examples:
        >>> tokens = ["<b>", " ", "a", "b"]
        >>> c = TokenConstraint.from_slots([["ab", "b"], ["a"]], tokens)
        >>> s = c.start
        >>> [tokens[i] for i in c.allowed_ids(s)]
        ['a', 'b']
        >>> for ch in "b a":
        ...     s = c.advance(s, tokens.index(ch))
        >>> c.accepts(s), c.allowed_ids(s)
        (True, [0])
    """

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.transitions: list[dict[int, int]] = [{}]
        self.final: list[bool] = [False]
        self._masks: dict[int, Tensor] = {}

    def _new_state(self) -> int:
        self.transitions.append({})
        self.final.append(False)
        return len(self.transitions) - 1

    def _add_word(self, root: int, word: str, index: Mapping[str, int]) -> int:
        state = root
        for ch in word:
            if ch not in index or ch in (" ", BLANK):
                raise ValueError(f"word {word!r}: {ch!r} is not a token of the vocabulary")
            nxt = self.transitions[state].get(index[ch])
            if nxt is None:
                nxt = self.transitions[state][index[ch]] = self._new_state()
            state = nxt
        return state

    @classmethod
    def from_slots(cls, slots: Sequence[Sequence[str]], tokens: Sequence[str]) -> "TokenConstraint":
        """Sentences of one word per slot, in order, separated by single spaces."""
        index = {t: i for i, t in enumerate(tokens)}
        c = cls(len(tokens))
        root = c.start
        for i, slot in enumerate(slots):
            ends = [c._add_word(root, w, index) for w in dict.fromkeys(slot)]
            if i == len(slots) - 1:
                for e in ends:
                    c.final[e] = True
            else:
                # One shared start state for the next slot: what follows does not depend on the word.
                nxt = c._new_state()
                for e in ends:
                    c.transitions[e][index[" "]] = nxt
                root = nxt
        return c

    @classmethod
    def from_words(cls, words: Sequence[str], tokens: Sequence[str]) -> "TokenConstraint":
        """Sentences of one or more of ``words``, separated by single spaces (a lexicon)."""
        index = {t: i for i, t in enumerate(tokens)}
        c = cls(len(tokens))
        for w in dict.fromkeys(words):
            end = c._add_word(c.start, w, index)
            c.final[end] = True
            c.transitions[end][index[" "]] = c.start
        return c

    @property
    def start(self) -> int:
        return 0

    def advance(self, state: int, token: int) -> int:
        """The state after ``token``; -1 when the token is not allowed there."""
        return self.transitions[state].get(token, -1) if state >= 0 else -1

    def accepts(self, state: int) -> bool:
        """Whether a sentence may end in ``state``."""
        return state >= 0 and self.final[state]

    def allowed_ids(self, state: int) -> list[int]:
        """Token ids allowed next (``EOS`` first when a sentence may end here)."""
        return sorted(self.transitions[state]) if not self.accepts(state) else [EOS, *sorted(self.transitions[state])]

    def mask(self, state: int) -> Tensor:
        """Boolean ``[V]``: True for the tokens allowed next (cached per state)."""
        m = self._masks.get(state)
        if m is None:
            m = torch.zeros(self.vocab_size, dtype=torch.bool)
            if state >= 0:
                m[self.allowed_ids(state)] = True
            self._masks[state] = m
        return m


def constraint_for(grammar: str | None, lexicon: str | None, tokens: Sequence[str]) -> TokenConstraint | None:
    """The constraint a ``decoding`` section asks for: a built-in grammar, a lexicon (file or ``grid``), or none.

    Raises:
        UsageError: an unknown grammar or lexicon name.
        ValueError: both given.
    """
    if grammar is not None and lexicon is not None:
        raise ValueError("decoding.grammar and decoding.lexicon are both set; joint search takes one constraint")
    if grammar is not None:
        from avtoolkit.decoding.grammar import grammar_slots

        return TokenConstraint.from_slots(grammar_slots(grammar), tokens)
    if lexicon is not None:
        from pathlib import Path

        from avtoolkit.decoding.lexicon import LEXICONS
        from avtoolkit.errors import UsageError

        if Path(lexicon).is_file():
            words = [line.split()[0] for line in Path(lexicon).read_text(encoding="utf-8").splitlines() if line.strip()]
        elif lexicon in LEXICONS:
            words = list(LEXICONS[lexicon])
        else:
            raise UsageError(f"decoding.lexicon: {lexicon}: no such file, and not a built-in word list "
                             f"({', '.join(LEXICONS)})")
        return TokenConstraint.from_words(words, tokens)
    return None


class CTCPrefixScorer:
    """CTC prefix probabilities of a set of hypotheses and of chosen one-token extensions.

    Keeps, per hypothesis ``g``, the forward variables ``r_n[t]`` (``g`` emitted by frame ``t``,
    ending in a non-blank) and ``r_b[t]`` (ending in blank), in log space, float64.

    Args:
        log_probs: CTC log-probabilities ``[T, V]`` of one utterance (valid frames only).
        blank: the blank id.
    """

    def __init__(self, log_probs: Tensor, blank: int = 0) -> None:
        self.x = log_probs.detach().to(torch.float64)
        self.blank = blank
        self.frames, self.vocab = self.x.shape
        self.x_t = self.x.T.contiguous()  # [V, T]: gathered per candidate
        self.cum_x = self.x.cumsum(0)  # [T, V]: sum of log x[k, c] for k <= t
        self.cum_x_t = self.cum_x.T.contiguous()

    def initial(self) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """The state of the empty prefix: ``((r_n [1, T], r_b [1, T]), prefix log-prob [1])``."""
        r_n = torch.full((1, self.frames), _NEG, dtype=torch.float64)
        return (r_n, self.cum_x[None, :, self.blank].clone()), torch.zeros(1, dtype=torch.float64)

    def extend(self, r: tuple[Tensor, Tensor], last: Tensor, empty: Tensor,
               ids: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Prefix log-probabilities of the extensions ``g + c`` (``c`` in ``ids``) and the forward variables of each.

        Args:
            r: forward variables ``(r_n [N, T], r_b [N, T])`` of the hypotheses.
            last: each hypothesis's last token ``[N]`` (any value for the empty prefix).
            empty: ``[N]`` True for the empty prefix.
            ids: ``[N, K]`` the tokens to extend each hypothesis by (ESPnet's partial scoring);
                default every token (``K = V``).

        Returns:
            ``(psi [N, K], (r_n [N, K, T], r_b [N, K, T]))``; where ``ids`` is the blank, ``psi`` is the full CTC
            log-probability of ``g`` itself (ending the hypothesis) and ``r_new`` is unused.
        """
        r_n, r_b = r  # [N, T]
        n = r_n.shape[0]
        if ids is None:
            ids = torch.arange(self.vocab).expand(n, self.vocab)
        both = torch.logaddexp(r_n, r_b)
        x_c, cx = self.x_t[ids], self.cum_x_t[ids]  # [N, K, T]
        # phi[t]: g complete by frame t and free to emit c at t + 1; for c == last, a blank must come between.
        same = (ids == last[:, None]) & ~empty[:, None]
        phi = torch.where(same[..., None], r_b[:, None, :], both[:, None, :])
        init = torch.where(empty[:, None], x_c[..., 0], torch.tensor(_NEG, dtype=torch.float64))  # [N, K]
        # r_n[t] = (r_n[t-1] + phi[t-1]) * x[t, c]: r_n = C + logcumsumexp(terms), C the cumulative log x.
        terms = torch.cat([(init - cx[..., 0])[..., None], phi[..., :-1] - cx[..., :-1]], dim=-1)
        new_n = cx + _logcumsumexp(terms)
        # r_b[t] = (r_n[t-1] + r_b[t-1]) * x[t, blank], with r_b[0] = 0 (probability).
        cb = self.cum_x[:, self.blank]  # [T]
        terms_b = torch.cat([torch.full((*ids.shape, 1), _NEG, dtype=torch.float64), new_n[..., :-1] - cb[:-1]], -1)
        new_b = cb + _logcumsumexp(terms_b)
        # psi = sum over the frame t where c is first emitted: phi[t-1] * x[t, c] (and init at t = 0).
        psi = torch.logsumexp(torch.cat([init[..., None], phi[..., :-1] + x_c[..., 1:]], dim=-1), dim=-1)
        psi = torch.where(ids == self.blank, both[:, -1:], psi)
        return psi, (new_n, new_b)


def _logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """``torch.logaddexp`` (broadcasting) through the larger term as reference: ~5x faster on CPU float64."""
    m = torch.maximum(a, b)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return m + torch.log(torch.exp(a - m) + torch.exp(b - m))


def _logcumsumexp(a: Tensor, block: int = 8) -> Tensor:
    """``torch.logcumsumexp(a, -1)`` in blocks of ``block`` frames: exp/cumsum inside a block, the exact op across blocks.

    torch's logcumsumexp is a scan of pairwise log-additions, ~20x slower than exp + cumsum; with
    each block's own maximum as reference the exponentials cannot overflow, and where one would
    underflow into a subnormal (a spread of over 700 nats within 8 frames) the exact op is used.
    """
    *lead, frames = a.shape
    pad = (-frames) % block
    if pad:
        a = torch.cat([a, a.new_full((*lead, pad), _NEG)], dim=-1)
    blocks = a.reshape(*lead, -1, block)
    m = blocks.amax(dim=-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    d = blocks - m
    if bool(((d < -700.0) & torch.isfinite(d)).any()):
        return torch.logcumsumexp(a[..., :frames], dim=-1)
    local = torch.log(torch.cumsum(torch.exp(d), dim=-1)) + m  # [..., nb, block]
    before = torch.logcumsumexp(local[..., -1], dim=-1)  # [..., nb]: everything up to each block's end
    before = torch.cat([before.new_full((*lead, 1), _NEG), before[..., :-1]], dim=-1)
    return _logaddexp(local, before[..., None]).reshape(*lead, -1)[..., :frames]


class IncrementalScorer(Protocol):
    """What the search asks of a decoder or language model: next-token log-probabilities, one token at a time."""

    def start(self) -> tuple[Tensor, Any]:
        """``(log-probs [1, V] of the first token after the start token, state)``."""

    def advance(self, state: Any, src: Tensor, tokens: Tensor) -> tuple[Tensor, Any]:
        """Keep hypotheses ``src [N]`` of ``state``, feed each its token ``tokens [N]``: ``(log-probs [N, V], state)``."""


class PrefixScorer:
    """The fallback: a :data:`DecoderStep` re-run on the whole prefixes every step (state = the prefixes)."""

    def __init__(self, step: DecoderStep) -> None:
        self.step = step

    def start(self) -> tuple[Tensor, Tensor]:
        prefixes = torch.full((1, 1), EOS, dtype=torch.long)
        return self.step(prefixes), prefixes

    def advance(self, state: Tensor, src: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        prefixes = torch.cat([state[src], tokens[:, None]], dim=1)
        return self.step(prefixes), prefixes


class StateScorer:
    """A model with ``init_state`` / ``step_state`` / ``select_state`` (module docstring), fed one token a step."""

    def __init__(self, model: Any, memory: Tensor | None = None, memory_lengths: Tensor | None = None) -> None:
        self.model, self.memory, self.memory_lengths = model, memory, memory_lengths

    def start(self) -> tuple[Tensor, Any]:
        state = self.model.init_state(self.memory, self.memory_lengths)
        n = 1 if self.memory is None else self.memory.shape[0]
        return self.model.step_state(state, torch.full((n,), EOS, dtype=torch.long))

    def advance(self, state: Any, src: Tensor, tokens: Tensor) -> tuple[Tensor, Any]:
        return self.model.step_state(self.model.select_state(state, src), tokens)


def is_incremental(model: Any) -> bool:
    """Whether ``model`` offers the incremental decoder-step interface (module docstring)."""
    return all(callable(getattr(model, m, None)) for m in ("init_state", "step_state", "select_state"))


def decoder_scorer(head: Any, memory: Tensor, memory_lengths: Tensor | None = None) -> IncrementalScorer:
    """The scorer of a hybrid head's decoder over ``memory``: incremental when the head offers it, else prefix re-runs."""
    if is_incremental(head):
        return StateScorer(head, memory, memory_lengths)
    return PrefixScorer(lambda p: head.decoder_step(memory, p.to(memory.device), memory_lengths))


def _as_scorer(decoder: DecoderStep | IncrementalScorer | None) -> IncrementalScorer | None:
    if decoder is None or (hasattr(decoder, "start") and hasattr(decoder, "advance")):
        return decoder  # type: ignore[return-value]
    return PrefixScorer(decoder)  # type: ignore[arg-type]


def joint_beam_search(ctc_log_probs: Tensor, decoder_step: DecoderStep | IncrementalScorer | None,
                      beam_size: int = 10, ctc_weight: float = 0.3, length_bonus: float = 0.0,
                      max_length: int | None = None, constraint: TokenConstraint | None = None, nbest: int = 1,
                      lm: IncrementalScorer | None = None, lm_weight: float = 0.0,
                      pre_beam: int | None = None) -> list[Hypothesis]:
    """Joint CTC/attention beam search over one utterance, with optional shallow fusion of a language model.

    Every step scores the extensions of all ``beam_size`` hypotheses with one decoder call (and
    one LM call), keeps, per hypothesis, the ``pre_beam`` best tokens by those scores, scores
    only those with CTC in one vectorised prefix pass, keeps the ``beam_size`` best overall, and
    sets aside those that end. It stops when no hypothesis is left running, when no running one
    can still beat the best finished one (every score term but the length bonus only falls as
    a hypothesis grows), or at ``max_length`` tokens (default: the number of frames, the most
    CTC can emit).

    Args:
        ctc_log_probs: ``[T, V]`` CTC log-probabilities (blank 0) of the valid frames.
        decoder_step: the attention decoder: an :class:`IncrementalScorer`, or a plain
            ``prefixes [N, L] (starting with EOS) -> [N, V]`` function (re-run on whole
            prefixes); ``None`` only when ``ctc_weight`` is 1 (CTC prefix search).
        beam_size: hypotheses kept per step.
        ctc_weight: weight of the CTC score, in [0, 1].
        length_bonus: added per emitted token (not for the end token).
        max_length: the longest hypothesis.
        constraint: only sentences this automaton accepts are returned; when none fits, the
            result is empty.
        nbest: how many finished hypotheses to return, best first.
        lm: a language model over the same tokens (an :class:`IncrementalScorer`), fused with ``lm_weight``.
        lm_weight: weight of the LM's log-probabilities (shallow fusion).
        pre_beam: CTC-scored tokens per hypothesis (default ``int(1.5 * beam_size)``, ESPnet's);
            at least the vocabulary size scores every token. Only with an attention decoder or LM:
            CTC alone scores every token.

    Returns:
        Up to ``nbest`` :class:`Hypothesis`, best first.

    Examples:
        >>> lp = torch.log_softmax(torch.tensor([[0., 5., 0.], [5., 0., 0.], [0., 0., 5.]]), -1)
        >>> [h.tokens for h in joint_beam_search(lp, None, beam_size=4, ctc_weight=1.0)]
        [[1, 2]]
    """
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight must be within [0, 1], got {ctc_weight}")
    if decoder_step is None and ctc_weight < 1.0:
        raise ValueError("joint search without an attention decoder needs ctc_weight=1")
    decoder = _as_scorer(decoder_step)
    frames, vocab = ctc_log_probs.shape
    max_length = frames if max_length is None else min(max_length, frames)
    use_ctc, use_att = ctc_weight > 0.0, ctc_weight < 1.0 and decoder is not None
    use_lm = lm is not None and lm_weight != 0.0
    pre_k = int(1.5 * beam_size) if pre_beam is None else int(pre_beam)
    partial = use_ctc and (use_att or use_lm) and pre_k < vocab
    scorer = CTCPrefixScorer(ctc_log_probs, blank=EOS)
    r, psi_prev = scorer.initial()
    tokens = torch.full((1, 0), EOS, dtype=torch.long)
    scores = torch.zeros(1, dtype=torch.float64)
    if use_att:
        att, att_state = decoder.start()  # type: ignore[union-attr]
    if use_lm:
        lm_lp, lm_state = lm.start()  # type: ignore[union-attr]
    states = [constraint.start] if constraint is not None else None
    finished: list[Hypothesis] = []
    not_eos = torch.ones(vocab, dtype=torch.float64)
    not_eos[EOS] = 0.0
    for step in range(max_length + 1):
        n = tokens.shape[0]
        cand = scores[:, None] + length_bonus * not_eos[None]
        if use_att:
            cand = cand + (1.0 - ctc_weight) * att.detach().to(torch.float64)
        if use_lm:
            cand = cand + lm_weight * lm_lp.detach().to(torch.float64)
        if step == max_length:  # only ending is left
            keep = torch.full_like(cand, _NEG)
            keep[:, EOS] = cand[:, EOS]
            cand = keep
        if states is not None:
            allowed = torch.stack([constraint.mask(s) for s in states])  # type: ignore[union-attr]
            cand = cand.masked_fill(~allowed, _NEG)
        ids = None
        if partial:  # ESPnet's pre-beam: CTC scores only each hypothesis's best tokens so far
            cand, ids = cand.topk(pre_k, dim=1)
        if use_ctc:
            last = tokens[:, -1] if step > 0 else torch.zeros(n, dtype=torch.long)
            psi, r_new = scorer.extend(r, last, torch.full((n,), step == 0), ids)
            cand = cand + ctc_weight * (psi - psi_prev[:, None])
        width = cand.shape[1]
        flat = cand.flatten()
        top, idx = flat.topk(min(beam_size, flat.numel()))
        live = torch.isfinite(top)
        if not bool(live.all()):  # fewer allowed extensions than the beam
            top, idx = top[live], idx[live]
            if top.numel() == 0:
                break
        src, col = idx // width, idx % width
        tok = col if ids is None else ids[src, col]
        ends = tok == EOS
        for s, sc in zip(src[ends].tolist(), top[ends].tolist()):
            finished.append(Hypothesis(tokens[s].tolist(), float(sc)))
        go = ~ends
        if not bool(go.any()):
            break
        src, col, tok, top = src[go], col[go], tok[go], top[go]
        if finished and length_bonus <= 0.0 and float(top.max()) <= max(h.score for h in finished):
            break  # no running hypothesis can overtake: its score only falls from here
        if finished and length_bonus > 0.0 and \
                float(top.max()) + length_bonus * (max_length - step - 1) <= max(h.score for h in finished):
            break
        if step == max_length:
            break
        tokens = torch.cat([tokens[src], tok[:, None]], dim=1)
        scores = top
        if use_ctc:
            psi_prev = psi[src, col]
            r = (r_new[0][src, col], r_new[1][src, col])
        if use_att:
            att, att_state = decoder.advance(att_state, src, tok)  # type: ignore[union-attr]
        if use_lm:
            lm_lp, lm_state = lm.advance(lm_state, src, tok)  # type: ignore[union-attr]
        if states is not None:
            states = [constraint.advance(states[s], t) for s, t in zip(src.tolist(), tok.tolist())]  # type: ignore[union-attr]
    finished.sort(key=lambda h: h.score, reverse=True)
    return finished[:nbest]


def greedy_attention(decoder_step: DecoderStep | IncrementalScorer, batch_size: int,
                     max_lengths: Sequence[int]) -> tuple[list[list[int]], list[float]]:
    """Greedy attention decoding of a batch: the most likely next token until ``EOS`` or ``max_lengths``.

    Args:
        decoder_step: the decoder over the whole batch (row ``b`` is utterance ``b``): an
            :class:`IncrementalScorer` or a ``prefixes [B, L] -> [B, V]`` function.
        batch_size: utterances in the batch.
        max_lengths: per utterance, the most tokens to emit (its encoder frames).

    Returns:
        Token ids per utterance (without start and end tokens), and each one's mean
        log-probability per emitted token (the end token included).
    """
    decoder = _as_scorer(decoder_step)
    prefixes = torch.full((batch_size, 0), EOS, dtype=torch.long)
    done = torch.zeros(batch_size, dtype=torch.bool)
    total = torch.zeros(batch_size, dtype=torch.float64)
    count = torch.zeros(batch_size)
    limit = torch.tensor([int(m) for m in max_lengths], dtype=torch.long)
    rows = torch.arange(batch_size)
    if isinstance(decoder, PrefixScorer):  # its start has one row; the batch needs one each
        logp, state = decoder.advance(torch.zeros((batch_size, 0), dtype=torch.long), rows,
                                      torch.full((batch_size,), EOS, dtype=torch.long))
    elif batch_size:
        logp, state = decoder.start()  # type: ignore[union-attr]
    for step in range(int(limit.max()) + 1 if batch_size else 0):
        logp = logp.detach().cpu().to(torch.float64)
        if step < int(limit.max()):
            nxt = logp.argmax(dim=-1)
        else:
            nxt = torch.full((batch_size,), EOS, dtype=torch.long)
        nxt = torch.where(step >= limit, torch.full_like(nxt, EOS), nxt)  # out of frames: end
        nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
        total += torch.where(done, 0.0, logp.gather(1, nxt[:, None]).squeeze(1))
        count += (~done).float()
        done |= nxt == EOS
        prefixes = torch.cat([prefixes, nxt[:, None]], dim=1)
        if bool(done.all()):
            break
        logp, state = decoder.advance(state, rows, nxt)  # type: ignore[union-attr]
    ids = []
    for row in prefixes.tolist():
        ids.append(row[: row.index(EOS)] if EOS in row else row)
    return ids, (total / count.clamp_min(1)).tolist()


class JointDecoder:
    """``decoding.name: joint``: joint CTC/attention beam search over a hybrid head's outputs.

    Called with the model's output dict (``log_probs``, ``lengths``, ``memory``) and returns one
    transcript per utterance (:meth:`decode`: with its joint score).

    Args:
        head: the hybrid head (its ``decoder_step`` runs the attention decoder).
        tokens: the CTC vocabulary, blank first.
        beam_size: hypotheses kept per step.
        ctc_weight: weight of the CTC score, in [0, 1].
        length_bonus: added per character.
        grammar: a built-in slot grammar (``grid``) to constrain the output to.
        lexicon: a lexicon file or built-in word list (``grid``) to constrain the output to.
        lm: a language model over the same tokens: a language-model run's checkpoint (``avtoolkit run
            grid_lm``, read as a :class:`~avtoolkit.models.stepwise_lm.StepwiseLM`), a
            :class:`~avtoolkit.models.lm.CharLSTMLM` ``.pt``, or any model with the incremental
            decoder-step interface; fused with ``lm_weight``.
        lm_weight: weight of the LM's log-probabilities (shallow fusion; 0 turns it off).
    """

    def __init__(self, head: Any, tokens: Sequence[str], beam_size: int = 10, ctc_weight: float = 0.3,
                 length_bonus: float = 0.0, grammar: str | None = None, lexicon: str | None = None,
                 lm: Any = None, lm_weight: float = 0.0) -> None:
        from avtoolkit.models.stepwise_lm import check_vocabulary, load_lm

        if isinstance(lm, (str, bytes)) or hasattr(lm, "__fspath__"):
            lm = load_lm(lm, tokens)  # type: ignore[arg-type]  # (checks its tokens)
        if lm is not None and not is_incremental(lm):
            raise ValueError("decoding.lm: a joint search LM needs init_state/step_state/select_state")
        if getattr(lm, "vocabulary", None) is not None:  # a run's LM: its token list
            check_vocabulary("the LM", lm.vocabulary, tokens)
        elif getattr(getattr(lm, "out", None), "out_features", None) is not None:  # a CharLSTMLM: its size
            check_vocabulary("the LM", lm.out.out_features, tokens)
        self.lm, self.lm_weight = lm, float(lm_weight)
        self.head = head
        self.tokens = list(tokens)
        self.beam_size, self.ctc_weight, self.length_bonus = beam_size, ctc_weight, length_bonus
        self.constraint = constraint_for(grammar, lexicon, self.tokens)

    def decode(self, out: Mapping[str, Tensor]) -> list[tuple[str, float]]:
        """``(transcript, joint score)`` per utterance; ``("", -inf)`` where no allowed sentence fits."""
        results = []
        with torch.inference_mode():
            for b, n in enumerate(out["lengths"].tolist()):
                memory = out["memory"][b : b + 1, :n]
                hyps = joint_beam_search(out["log_probs"][b, :n].float().cpu(), _CPUScorer(decoder_scorer(self.head, memory)),
                                         beam_size=self.beam_size,
                                         ctc_weight=self.ctc_weight, length_bonus=self.length_bonus,
                                         constraint=self.constraint,
                                         lm=None if self.lm is None else _CPUScorer(StateScorer(self.lm)),
                                         lm_weight=self.lm_weight)
                results.append((_tidy(tokens_text(hyps[0].tokens, self.tokens)), hyps[0].score) if hyps
                               else ("", _NEG))
        return results

    def __call__(self, out: Mapping[str, Tensor]) -> list[str]:
        return [text for text, _ in self.decode(out)]


class AttentionGreedyDecoder:
    """``decoding.name: attention``: greedy attention decoding over a hybrid head's outputs."""

    def __init__(self, head: Any, tokens: Sequence[str]) -> None:
        self.head, self.tokens = head, list(tokens)

    def decode(self, out: Mapping[str, Tensor]) -> list[tuple[str, float]]:
        """``(transcript, mean log-probability per token)`` per utterance."""
        memory, lengths = out["memory"], out["lengths"]
        with torch.inference_mode():
            ids, scores = greedy_attention(decoder_scorer(self.head, memory, lengths), memory.shape[0], lengths.tolist())
        return [(_tidy(tokens_text(row, self.tokens)), s) for row, s in zip(ids, scores)]

    def __call__(self, out: Mapping[str, Tensor]) -> list[str]:
        return [text for text, _ in self.decode(out)]


class _CPUScorer:
    """A scorer whose log-probabilities come back on the CPU, where the search runs (the model may be on a GPU)."""

    def __init__(self, inner: IncrementalScorer) -> None:
        self.inner = inner

    def start(self) -> tuple[Tensor, Any]:
        logp, state = self.inner.start()
        return logp.cpu(), state

    def advance(self, state: Any, src: Tensor, tokens: Tensor) -> tuple[Tensor, Any]:
        logp, state = self.inner.advance(state, src, tokens)
        return logp.cpu(), state


def _tidy(text: str) -> str:
    return " ".join(text.split())


def tokens_text(ids: Sequence[int], tokens: Sequence[str]) -> str:
    """The text of decoder token ids (no CTC collapsing: the decoder emits each character once)."""
    return "".join(tokens[i] for i in ids if i != EOS)


def build_attention_decoder(cfg: Mapping[str, Any] | None, tokens: Sequence[str], head: Any) -> Callable[
        [Mapping[str, Tensor]], list[str]]:
    """The decoder of a ``decoding`` section naming ``attention`` or ``joint``, over ``head``'s outputs.

    Raises:
        ValueError: another decoder name (those are CTC decoders: ``ctc_search.build_decoder``).
    """
    c = section(DecodingConfig, dict(cfg or {}))
    if c.name == "joint":
        return JointDecoder(head, tokens, beam_size=int(c.beam_size), ctc_weight=float(c.ctc_weight),
                            length_bonus=float(c.length_bonus), grammar=c.grammar, lexicon=c.lexicon,
                            lm=c.lm, lm_weight=float(c.lm_weight) if c.lm else 0.0)
    if c.name == "attention":
        return AttentionGreedyDecoder(head, tokens)
    raise ValueError(f"decoding.name: {c.name!r} is a CTC decoder; the attention decoders are 'attention' and 'joint'")
