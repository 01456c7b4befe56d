"""Slot grammars for beam search: a sentence is one word from each slot, in order.

Small-vocabulary corpora are defined by such a grammar (GRID: ``command colour preposition
letter digit adverb``), and so are the systems measured on them: pocketsphinx decodes GRID
with it as a JSGF grammar. :class:`SlotGrammarLM` gives flashlight-text's lexicon beam search
the same constraint as a word-level language model: a word scores 0 where the grammar allows
it and a large penalty elsewhere, and a sentence may only end after its last slot. The beam
then only keeps sentences of the grammar, and hypotheses at the same slot share one LM state
(the grammar's future does not depend on which words filled the earlier slots), so the
search keeps the best of them.

``decoding.grammar: grid`` in a recipe (or ``avtoolkit noise-eval --grammar grid``) turns it on.
"""

from __future__ import annotations

from typing import Callable, Sequence

from avtoolkit.errors import UsageError
from avtoolkit.data.grid_grammar import GRID_SLOTS

#: Built-in grammars ``decoding.grammar`` understands: name -> slots of words.
GRAMMARS: dict[str, tuple[tuple[str, ...], ...]] = {"grid": tuple(GRID_SLOTS.values())}
#: Score of a word the grammar does not allow there (finite: flashlight sums scores).
OUT_OF_GRAMMAR = -1e4


def grammar_slots(name: str) -> tuple[tuple[str, ...], ...]:
    """The slots of a built-in grammar.

    Raises:
        UsageError: not a built-in grammar (names ``decoding.grammar``).

    Examples:
        >>> [len(slot) for slot in grammar_slots("grid")]
        [4, 4, 4, 25, 10, 4]
    """
    if name not in GRAMMARS:
        raise UsageError(f"decoding.grammar: '{name}' is not a built-in grammar ({', '.join(GRAMMARS)})")
    return GRAMMARS[name]


def grammar_words(name: str) -> list[str]:
    """Every word of a built-in grammar, slot by slot, each once (the lexicon it needs).

    Examples:
        >>> words = grammar_words("grid")
        >>> len(words), words[:3], words[-1]
        (51, ['bin', 'lay', 'place'], 'soon')
    """
    return list(dict.fromkeys(w for slot in grammar_slots(name) for w in slot))


def in_grammar(sentence: str, slots: Sequence[Sequence[str]]) -> bool:
    """Whether ``sentence`` has one word of each slot, in order.

    Examples:
        >>> slots = grammar_slots("grid")
        >>> in_grammar("bin blue at f two now", slots), in_grammar("bin blue at f two", slots)
        (True, False)
        >>> in_grammar("blue bin at f two now", slots)
        False
    """
    words = sentence.split()
    return len(words) == len(slots) and all(w in slot for w, slot in zip(words, slots))


def slot_grammar_lm(slots: Sequence[Sequence[str]]) -> object:
    """A flashlight-text language model (torchaudio ``CTCDecoderLM``) that only allows ``slots``.

    Give it to ``ctc_decoder(lm=...)``, then call its ``bind(word_index)`` with the decoder's
    word dictionary. Until then every word scores 0: the decoder scores each lexicon word from
    the start state to build its lexicon trie, and those scores become look-ahead penalties
    for every word at every position; a grammar that forbids "at" at the start would then
    prune "at" in the preposition slot before it is spelt out.

    Args:
        slots: the words allowed at each position of a sentence.
    """
    from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState

    class SlotGrammarLM(CTCDecoderLM):
        """One LM state per slot position: position ``i`` allows the words of slot ``i``."""

        def __init__(self) -> None:
            super().__init__()
            self.slots = [tuple(slot) for slot in slots]
            self.allowed: list[frozenset[int]] | None = None
            self._states: list[CTCDecoderLMState] = []
            self._position: dict[CTCDecoderLMState, int] = {}

        def bind(self, word_index: Callable[[str], int]) -> None:
            """Turns the grammar on, with ``word_index(word)`` the decoder's index of a word.

            Raises:
                ValueError: a grammar word is not in the lexicon (beam search could never emit it).
            """
            known = {w: word_index(w) for slot in self.slots for w in slot}
            missing = sorted(w for w, i in known.items() if i < 0)
            if missing:
                raise ValueError(f"grammar words not in the lexicon: {', '.join(missing[:10])}")
            self.allowed = [frozenset(known[w] for w in slot) for slot in self.slots]

        def start(self, start_with_nothing: bool) -> CTCDecoderLMState:
            # One chain of states, built once: position i's state, then a final "past the end".
            if not self._states:
                state = CTCDecoderLMState()
                for i in range(len(self.slots) + 2):
                    self._states.append(state)
                    self._position[state] = i
                    state = state.child(0)
            return self._states[0]

        def score(self, state: CTCDecoderLMState, usr_token_idx: int) -> tuple[CTCDecoderLMState, float]:
            i = self._position.get(state, 0)
            nxt = self._states[min(i + 1, len(self._states) - 1)] if self._states else state
            if self.allowed is None:
                return nxt, 0.0
            ok = i < len(self.allowed) and usr_token_idx in self.allowed[i]
            return nxt, 0.0 if ok else OUT_OF_GRAMMAR

        def finish(self, state: CTCDecoderLMState) -> tuple[CTCDecoderLMState, float]:
            if self.allowed is None:
                return state, 0.0
            return state, 0.0 if self._position.get(state) == len(self.allowed) else OUT_OF_GRAMMAR

    return SlotGrammarLM()
