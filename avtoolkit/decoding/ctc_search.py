"""CTC decoding: greedy and beam search (torchaudio's flashlight-text decoder).

``build_decoder(cfg, tokens)`` turns the recipe's ``decoding`` section into a callable
``(log_probs [B, T, V], lengths [B]) -> list[str]``. Beam search is lexicon-free by
default (it searches over characters); a lexicon file restricts output to its words, a
KenLM file (``.arpa`` or binary) adds a word language model weighted by ``lm_weight``, and a
built-in slot grammar (``grammar: grid``, :mod:`avtoolkit.decoding.grammar`) restricts output
to the grammar's sentences.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from avtoolkit.data.text import BLANK, CharVocab
from avtoolkit.recipe.schema import DecodingConfig, section

Decoder = Callable[[Tensor, Tensor], list[str]]

#: flashlight-text's word separator token; our vocabulary's space maps onto it.
_SIL = "|"
#: log-probability of a token that cannot occur (finite: flashlight sums scores).
_NEVER = -1e4


def _tidy(text: str) -> str:
    return " ".join(text.split())


class GreedyDecoder:
    """Best path: argmax per frame, merge repeats, drop blanks.

    Examples:
        >>> from avtoolkit.data.text import CHARACTERS
        >>> ids = torch.tensor([[3, 3, 0, 4, 1, 5]])  # "a a <b> b ' ' c"
        >>> log_probs = torch.nn.functional.one_hot(ids, len(CHARACTERS)).float().log()
        >>> GreedyDecoder(CHARACTERS)(log_probs, torch.tensor([6]))
        ['ab c']
        >>> GreedyDecoder(CHARACTERS)(log_probs, torch.tensor([3]))
        ['a']
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        self.vocab = CharVocab(list(tokens))

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        best = log_probs.argmax(dim=-1).cpu()
        return [_tidy(self.vocab.ctc_collapse(best[i, : int(n)].tolist())) for i, n in enumerate(lengths.cpu())]


class BeamSearchDecoder:
    """Beam search with torchaudio's ``ctc_decoder`` (flashlight-text).

    Args:
        tokens: the CTC token list, blank first, with ``" "`` as the word separator.
        beam_size: hypotheses kept per frame.
        lexicon: optional lexicon file (``word c h a r |`` per line); without it the search
            is lexicon-free over characters.
        lm: optional KenLM language model file (needs a lexicon for word-level scoring
            of out-of-lexicon words to be meaningful).
        lm_weight: weight of the language model score.
        word_score: bonus added per emitted word.

    Raises:
        FileNotFoundError: the lexicon or LM file does not exist (names the recipe key).
        ValueError: the token list has no blank or no space.

    Examples:
        >>> from avtoolkit.data.text import CHARACTERS
        >>> ids = torch.tensor([[10, 0, 11, 1, 3, 0]])  # "h i ' ' a"
        >>> log_probs = torch.log_softmax(torch.nn.functional.one_hot(ids, 29).float() * 10, -1)
        >>> BeamSearchDecoder(CHARACTERS, beam_size=4)(log_probs, torch.tensor([6]))
        ['hi a']
    """

    def __init__(self, tokens: Sequence[str], beam_size: int = 5, lexicon: str | None = None,
                 lm: str | None = None, lm_weight: float = 0.5, word_score: float = 0.0,
                 grammar: str | None = None) -> None:
        from torchaudio.models.decoder import ctc_decoder

        if BLANK not in tokens or " " not in tokens:
            raise ValueError(f"beam search needs the blank {BLANK!r} and the space ' ' among the tokens; "
                             f"got {list(tokens)[:5]}...")
        for key, path in (("decoding.lexicon", lexicon), ("decoding.lm", lm)):
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"{key}: no such file: {path}")
        if lm is not None and Path(lm).suffix.lower() in (".ckpt", ".pt", ".pth"):
            from avtoolkit.errors import UsageError

            raise UsageError(f"decoding.lm: {lm} is a neural language model, which the joint CTC/attention search "
                             "of a hybrid model fuses (decoding.name=joint); CTC beam search takes a KenLM file "
                             "(.arpa or .bin)")
        if lexicon is not None:
            from avtoolkit.decoding.lexicon import check_lexicon

            check_lexicon(lexicon, [_SIL if t == " " else t for t in tokens])
        grammar_lm = None
        if grammar is not None:
            from avtoolkit.decoding.grammar import grammar_slots, slot_grammar_lm

            if lm is not None:
                raise ValueError("decoding.grammar and decoding.lm are both set: beam search takes one "
                                 "language model; drop one of them")
            grammar_lm = slot_grammar_lm(grammar_slots(grammar))
            if lexicon is None:  # the grammar's own words
                lexicon = str(_grammar_lexicon(grammar, tokens))
        # flashlight-text reads the separator as a named token, not a literal space.
        self._fl_tokens = [_SIL if t == " " else t for t in tokens]
        self.lexicon = None if lexicon is None else str(lexicon)  # flashlight-text takes str, not Path
        self.grammar = grammar
        self._sil_id = self._fl_tokens.index(_SIL)
        self._decoder = ctc_decoder(
            lexicon=self.lexicon, tokens=self._fl_tokens,
            lm=grammar_lm if grammar_lm is not None else (None if lm is None else str(lm)), nbest=1,
            beam_size=beam_size, lm_weight=1.0 if grammar_lm is not None else (lm_weight if lm else 0.0),
            word_score=word_score, blank_token=BLANK, sil_token=_SIL, unk_word="<unk>",
        )
        if grammar_lm is not None:
            grammar_lm.bind(self._decoder.word_dict.get_index)

    def __call__(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        # The flashlight decoder runs on CPU float32, contiguous.
        emissions = log_probs.detach().to("cpu", torch.float32)
        lengths = lengths.detach().to("cpu", torch.int64)
        if self.lexicon is not None:
            # The lexicon decoder only emits a word when the word separator follows it, and
            # CTC models end an utterance with blanks, not a space: the last word could be lost.
            # One more frame of certain separator closes it.
            emissions = torch.cat([emissions, emissions[:, :1]], dim=1)
            rows = torch.arange(len(lengths))
            emissions[rows, lengths] = _NEVER
            emissions[rows, lengths, self._sil_id] = 0.0
            lengths = lengths + 1
        hyps = self._decoder(emissions.contiguous(), lengths.to(torch.int32))
        out = []
        for nbest in hyps:
            if not nbest:
                out.append("")
            elif self.lexicon is not None:
                out.append(_tidy(" ".join(nbest[0].words)))
            else:
                chars = [self._fl_tokens[int(i)] for i in nbest[0].tokens]
                out.append(_tidy("".join(" " if c == _SIL else c for c in chars)))
        return out


def _grammar_lexicon(grammar: str, tokens: Sequence[str]) -> Path:
    """A lexicon file of a built-in grammar's words, in a new temporary folder."""
    import tempfile

    from avtoolkit.decoding.grammar import grammar_words
    from avtoolkit.decoding.lexicon import write_lexicon

    return write_lexicon(grammar_words(grammar), Path(tempfile.mkdtemp(prefix="avtoolkit-grammar-")) / "lexicon.txt",
                         tokens)


def build_decoder(cfg: Mapping[str, Any] | None, tokens: Sequence[str]) -> Decoder:
    """The decoder a recipe's ``decoding`` section names.

    Args:
        cfg: ``{name: greedy|beam, beam_size, lexicon, grammar, lm, lm_weight, word_score}``; missing
            keys take the :class:`~avtoolkit.recipe.schema.DecodingConfig` defaults, ``None``
            means greedy.
        tokens: the CTC vocabulary (blank first), e.g. a checkpoint's ``vocabulary``.

    Returns:
        A callable ``(log_probs [B, T, V], lengths [B]) -> list[str]``.

    Raises:
        ValueError: an unknown decoder name (names the ``decoding.name`` key).

    Examples:
        >>> from avtoolkit.data.text import CHARACTERS
        >>> type(build_decoder({"name": "greedy"}, CHARACTERS)).__name__
        'GreedyDecoder'
        >>> type(build_decoder({"name": "beam", "beam_size": 8}, CHARACTERS)).__name__
        'BeamSearchDecoder'
    """
    cfg = dict(cfg or {})
    c = section(DecodingConfig, cfg)
    name = c.name
    if name == "greedy":
        return GreedyDecoder(tokens)
    if name == "beam":
        return BeamSearchDecoder(
            tokens, beam_size=int(c.beam_size), lexicon=c.lexicon, lm=c.lm,
            lm_weight=float(c.lm_weight), word_score=float(c.word_score), grammar=c.grammar,
        )
    if name in ("attention", "joint"):
        from avtoolkit.errors import UsageError

        raise UsageError(f"decoding.name: {name!r} runs an attention decoder, which only a hybrid CTC/attention "
                         "model has (head hybrid_ctc_attention, from its PyTorch checkpoint); decode this one "
                         "with 'greedy' or 'beam'")
    raise ValueError(f"decoding.name: unknown decoder {name!r}; use 'greedy' or 'beam'")
