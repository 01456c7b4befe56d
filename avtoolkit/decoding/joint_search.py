"""Joint CTC/attention beam search (hybrid models), with an optional grammar or lexicon constraint.

A hybrid model (head ``hybrid_ctc_attention``) has a CTC branch and an attention decoder on the
same encoder output. The search extends every hypothesis by every token at once and scores
each extension as ESPnet's joint decoding does (Watanabe et al., "Hybrid CTC/Attention
Architecture for End-to-End Speech Recognition", 2017)::

    score(y) = (1 - ctc_weight) * log p_att(y, eos | x) + ctc_weight * log p_ctc(y | x) + length_bonus * |y|

The CTC part of a growing prefix is its *prefix* probability (the probability that the CTC
output starts with it), computed for every hypothesis and every next token in one vectorised
pass: the forward recursion over frames is a linear recurrence, so it is a cumulative sum of
log-probabilities and one ``logcumsumexp`` instead of a loop over frames. Ending a hypothesis
(``eos``) swaps its prefix probability for its full CTC probability, so a finished hypothesis
carries exactly the score above. Token 0 is both the CTC blank and the decoder's start/end
token (ESPnet's convention too), so the vocabulary stays the CTC one.

A :class:`TokenConstraint` (a slot grammar such as GRID's, or any word list) masks, at each
step, the tokens that would leave every allowed sentence, and allows ``eos`` only where an
allowed sentence ends: every returned sentence is then one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

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
    """CTC prefix probabilities of a set of hypotheses and of all their one-token extensions.

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
        self.cum_x = self.x.cumsum(0)  # [T, V]: sum of log x[k, c] for k <= t

    def initial(self) -> tuple[Tensor, Tensor]:
        """The state of the empty prefix: ``(r [1, T, 2], prefix log-prob [1])``."""
        r = torch.full((1, self.frames, 2), _NEG, dtype=torch.float64)
        r[0, :, 1] = self.cum_x[:, self.blank]
        return r, torch.zeros(1, dtype=torch.float64)

    def extend(self, r: Tensor, last: Tensor, empty: Tensor) -> tuple[Tensor, Tensor]:
        """Prefix log-probabilities of every extension ``g + c`` and the forward variables of each.

        Args:
            r: forward variables ``[N, T, 2]`` of the hypotheses.
            last: each hypothesis's last token ``[N]`` (any value for the empty prefix).
            empty: ``[N]`` True for the empty prefix.

        Returns:
            ``(psi [N, V], r_new [N, V, T, 2])``; ``psi[:, blank]`` is the full CTC log-probability
            of ``g`` itself (ending the hypothesis), ``r_new[:, blank]`` is unused.
        """
        n, frames, v = r.shape[0], self.frames, self.vocab
        r_n, r_b = r[..., 0], r[..., 1]  # [N, T]
        both = torch.logaddexp(r_n, r_b)
        # phi[t]: g complete by frame t and free to emit c at t + 1; for c == last, a blank must come between.
        phi = both[:, None, :].expand(n, v, frames).clone()
        rows = torch.arange(n)
        phi[rows, last.clamp(0, v - 1)] = torch.where(empty[:, None], phi[rows, last.clamp(0, v - 1)], r_b)
        cx = self.cum_x.T[None]  # [1, V, T]
        init = torch.where(empty[:, None], self.x[0][None, :], torch.tensor(_NEG, dtype=torch.float64))  # [N, V]
        # r_n[t] = (r_n[t-1] + phi[t-1]) * x[t, c]: r_n = C + logcumsumexp(terms), C the cumulative log x.
        terms = torch.cat([(init - cx[..., 0])[..., None], phi[..., :-1] - cx[..., :-1]], dim=-1)
        new_n = cx + torch.logcumsumexp(terms, dim=-1)
        # r_b[t] = (r_n[t-1] + r_b[t-1]) * x[t, blank], with r_b[0] = 0 (probability).
        cb = self.cum_x[:, self.blank]  # [T]
        terms_b = torch.cat([torch.full((n, v, 1), _NEG, dtype=torch.float64), new_n[..., :-1] - cb[:-1]], dim=-1)
        new_b = cb + torch.logcumsumexp(terms_b, dim=-1)
        # psi = sum over the frame t where c is first emitted: phi[t-1] * x[t, c] (and init at t = 0).
        x_t = self.x.T[None, :, 1:]  # [1, V, T-1]
        psi = torch.logsumexp(torch.cat([init[..., None], phi[..., :-1] + x_t], dim=-1), dim=-1)
        psi[:, self.blank] = both[:, -1]
        return psi, torch.stack([new_n, new_b], dim=-1)


def joint_beam_search(ctc_log_probs: Tensor, decoder_step: DecoderStep | None, beam_size: int = 10,
                      ctc_weight: float = 0.3, length_bonus: float = 0.0, max_length: int | None = None,
                      constraint: TokenConstraint | None = None, nbest: int = 1) -> list[Hypothesis]:
    """Joint CTC/attention beam search over one utterance.

    Every step scores all ``beam x vocabulary`` extensions with one decoder call and one
    vectorised CTC prefix pass, keeps the ``beam_size`` best, and sets aside those that end.
    It stops when no hypothesis is left running, when no running one can still beat the best
    finished one (every score term but the length bonus only falls as a hypothesis grows), or
    at ``max_length`` tokens (default: the number of frames, the most CTC can emit).

    Args:
        ctc_log_probs: ``[T, V]`` CTC log-probabilities (blank 0) of the valid frames.
        decoder_step: ``prefixes [N, L] (starting with EOS) -> [N, V]`` next-token log-probs of
            the attention decoder; ``None`` only when ``ctc_weight`` is 1 (CTC prefix search).
        beam_size: hypotheses kept per step.
        ctc_weight: weight of the CTC score, in [0, 1].
        length_bonus: added per emitted token (not for the end token).
        max_length: the longest hypothesis.
        constraint: only sentences this automaton accepts are returned; when none fits, the
            result is empty.
        nbest: how many finished hypotheses to return, best first.

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
    frames, vocab = ctc_log_probs.shape
    max_length = frames if max_length is None else min(max_length, frames)
    use_ctc, use_att = ctc_weight > 0.0, ctc_weight < 1.0 and decoder_step is not None
    scorer = CTCPrefixScorer(ctc_log_probs, blank=EOS)
    r, psi_prev = scorer.initial()
    prefixes = torch.full((1, 1), EOS, dtype=torch.long)
    scores = torch.zeros(1, dtype=torch.float64)
    states = [constraint.start] if constraint is not None else None
    finished: list[Hypothesis] = []
    not_eos = torch.ones(vocab, dtype=torch.float64)
    not_eos[EOS] = 0.0
    for step in range(max_length + 1):
        n = prefixes.shape[0]
        cand = scores[:, None] + length_bonus * not_eos[None]
        if use_att:
            att = decoder_step(prefixes).detach().to(torch.float64)  # type: ignore[misc]
            cand = cand + (1.0 - ctc_weight) * att
        if use_ctc:
            psi, r_new = scorer.extend(r, prefixes[:, -1], torch.full((n,), step == 0))
            cand = cand + ctc_weight * (psi - psi_prev[:, None])
        if step == max_length:  # only ending is left
            keep = torch.full_like(cand, _NEG)
            keep[:, EOS] = cand[:, EOS]
            cand = keep
        if states is not None:
            allowed = torch.stack([constraint.mask(s) for s in states])  # type: ignore[union-attr]
            cand = cand.masked_fill(~allowed, _NEG)
        flat = cand.flatten()
        k = min(beam_size, int(torch.isfinite(flat).sum()))
        if k == 0:
            break
        top, idx = flat.topk(k)
        src, tok = idx // vocab, idx % vocab
        ends = tok == EOS
        for s, sc in zip(src[ends].tolist(), top[ends].tolist()):
            finished.append(Hypothesis(prefixes[s, 1:].tolist(), float(sc)))
        go = ~ends
        if not bool(go.any()):
            break
        src, tok, top = src[go], tok[go], top[go]
        if finished and length_bonus <= 0.0 and float(top.max()) <= max(h.score for h in finished):
            break  # no running hypothesis can overtake: its score only falls from here
        if finished and length_bonus > 0.0 and \
                float(top.max()) + length_bonus * (max_length - step - 1) <= max(h.score for h in finished):
            break
        prefixes = torch.cat([prefixes[src], tok[:, None]], dim=1)
        scores = top
        if use_ctc:
            psi_prev = psi[src, tok]
            r = r_new[src, tok]
        if states is not None:
            states = [constraint.advance(states[s], t) for s, t in zip(src.tolist(), tok.tolist())]  # type: ignore[union-attr]
    finished.sort(key=lambda h: h.score, reverse=True)
    return finished[:nbest]


def greedy_attention(decoder_step: DecoderStep, batch_size: int,
                     max_lengths: Sequence[int]) -> tuple[list[list[int]], list[float]]:
    """Greedy attention decoding of a batch: the most likely next token until ``EOS`` or ``max_lengths``.

    Args:
        decoder_step: ``prefixes [B, L] -> [B, V]`` over the whole batch.
        batch_size: utterances in the batch.
        max_lengths: per utterance, the most tokens to emit (its encoder frames).

    Returns:
        Token ids per utterance (without start and end tokens), and each one's mean
        log-probability per emitted token (the end token included).
    """
    prefixes = torch.full((batch_size, 1), EOS, dtype=torch.long)
    done = torch.zeros(batch_size, dtype=torch.bool)
    total = torch.zeros(batch_size, dtype=torch.float64)
    count = torch.zeros(batch_size)
    limit = torch.tensor([int(m) for m in max_lengths], dtype=torch.long)
    for step in range(int(limit.max()) + 1 if batch_size else 0):
        logp = decoder_step(prefixes).detach().cpu().to(torch.float64)
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
    ids = []
    for row in prefixes[:, 1:].tolist():
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
    """

    def __init__(self, head: Any, tokens: Sequence[str], beam_size: int = 10, ctc_weight: float = 0.3,
                 length_bonus: float = 0.0, grammar: str | None = None, lexicon: str | None = None) -> None:
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

                def step(prefixes: Tensor, memory: Tensor = memory) -> Tensor:
                    return self.head.decoder_step(memory, prefixes).cpu()

                hyps = joint_beam_search(out["log_probs"][b, :n].float().cpu(), step, beam_size=self.beam_size,
                                         ctc_weight=self.ctc_weight, length_bonus=self.length_bonus,
                                         constraint=self.constraint)
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
            ids, scores = greedy_attention(lambda p: self.head.decoder_step(memory, p, lengths),
                                           memory.shape[0], lengths.tolist())
        return [(_tidy(tokens_text(row, self.tokens)), s) for row, s in zip(ids, scores)]

    def __call__(self, out: Mapping[str, Tensor]) -> list[str]:
        return [text for text, _ in self.decode(out)]


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
                            length_bonus=float(c.length_bonus), grammar=c.grammar, lexicon=c.lexicon)
    if c.name == "attention":
        return AttentionGreedyDecoder(head, tokens)
    raise ValueError(f"decoding.name: {c.name!r} is a CTC decoder; the attention decoders are 'attention' and 'joint'")
