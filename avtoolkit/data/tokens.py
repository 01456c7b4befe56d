"""Token kinds of a recipe's ``data.tokens``: characters (the default) or SentencePiece subwords.

``{kind: characters}`` is :class:`~avtoolkit.data.text.CharVocab` (blank, space, apostrophe,
a-z). ``{kind: sentencepiece, model: unigram5000.model}`` reads a SentencePiece model (the
``sentencepiece`` package: Google's reference implementation, what ESPnet and auto_avsr train
their unigram units with, a pip wheel with no system dependency). The token list is the blank,
then the model's pieces (its control pieces ``<s>`` ``</s>`` left out), or, with ``units``, the
pieces in the order of an ESPnet units file (``piece id`` lines; auto_avsr's
``unigram5000_units.txt``), which is the id order their checkpoints were trained with.

Tokens are stored as text: the word-boundary mark ``▁`` becomes a space, so joining the tokens
of a hypothesis gives its words, as with characters; ``case: upper`` (auto_avsr's units are
upper case) feeds the model upper-case text and stores the tokens lower case, so transcripts
compare with avtoolkit's lower-case normalised references.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping

from avtoolkit.data.text import BLANK, CharVocab

_BOUNDARY = "\u2581"
KINDS = ("characters", "sentencepiece")


class SentencePieceVocab(CharVocab):
    """SentencePiece subword tokens for CTC / attention, blank at id 0.

    Args:
        model: a SentencePiece ``.model`` file.
        units: an ESPnet units file giving the token order (line ``i`` is id ``i``); default:
            the model's own piece order.
        case: ``upper`` or ``lower`` to change the case of the text before encoding, ``keep``
            to leave it.

    Raises:
        FileNotFoundError: ``model`` or ``units`` missing.
        ValueError: a units file with a piece the model lacks, or a bad line.

    Examples:
        >>> import sentencepiece as spm, tempfile, io
        >>> folder = tempfile.mkdtemp()
        >>> text = io.StringIO("\\n".join(["bin blue at f two now", "place red by g nine soon"] * 50))
        >>> spm.SentencePieceTrainer.train(sentence_iterator=text, model_prefix=folder + "/m", vocab_size=24,
        ...                                model_type="unigram", minloglevel=2)
        >>> vocab = SentencePieceVocab(folder + "/m.model")
        >>> vocab.tokens[0], vocab.decode(vocab.encode("bin blue now")).strip()
        ('<blank>', 'bin blue now')
    """

    def __init__(self, model: str | Path, units: str | Path | None = None,
                 case: Literal["upper", "lower", "keep"] = "keep") -> None:
        import sentencepiece

        model = Path(model)
        if not model.is_file():
            raise FileNotFoundError(f"data.tokens.model: no such SentencePiece model: {model}")
        if case not in ("upper", "lower", "keep"):
            raise ValueError(f"data.tokens.case must be upper, lower or keep, got {case!r}")
        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
        sp = self.processor
        if units is None:
            pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not sp.is_control(i)]
        else:
            pieces = _read_units(Path(units), {sp.id_to_piece(i) for i in range(sp.get_piece_size())})
        self.case = case
        self.pieces = pieces
        self._piece_index = {p: i + 1 for i, p in enumerate(pieces)}
        self._unk = self._piece_index.get(sp.id_to_piece(sp.unk_id()), 1)
        shown = [p.replace(_BOUNDARY, " ") for p in pieces]
        super().__init__([BLANK] + [p.lower() if case == "upper" else p for p in shown])

    def _cased(self, text: str) -> str:
        return text.upper() if self.case == "upper" else text.lower() if self.case == "lower" else text

    def invalid_chars(self, text: str) -> list[str]:
        """Characters that the model can only read as its unknown piece."""
        bad = set()
        for ch in set(text) - {" "}:
            if any(self._piece_index.get(p, self._unk) == self._unk for p in
                   self.processor.encode(self._cased(ch), out_type=str) if p != _BOUNDARY):
                bad.add(ch)
        return sorted(bad)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (pieces the token list lacks become its unknown token)."""
        return [self._piece_index.get(p, self._unk) for p in self.processor.encode(self._cased(text), out_type=str)]


def _read_units(path: Path, known: set[str]) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"data.tokens.units: no such units file: {path}")
    pieces = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] != str(len(pieces) + 1):
            raise ValueError(f"{path}:{lineno}: expected 'piece {len(pieces) + 1}', got {line!r}")
        if fields[0] not in known:
            raise ValueError(f"{path}:{lineno}: piece {fields[0]!r} is not in the SentencePiece model")
        pieces.append(fields[0])
    return pieces


def make_vocab(spec: Mapping[str, Any] | None, base: Path | None = None) -> CharVocab:
    """The vocabulary of a ``data.tokens`` mapping (``None``: characters).

    Relative paths are read from ``base`` (the recipe's folder) when given.

    Raises:
        ValueError: an unknown kind, an unknown key, or a sentencepiece entry without ``model``.

    Examples:
        >>> len(make_vocab(None)), len(make_vocab({"kind": "characters"}))
        (29, 29)
    """
    spec = dict(spec or {"kind": "characters"})
    kind = spec.pop("kind", "characters")
    if kind not in KINDS:
        raise ValueError(f"data.tokens.kind: unknown token kind {kind!r}; kinds are {', '.join(KINDS)}")
    if kind == "characters":
        if spec:
            raise ValueError(f"data.tokens: characters take no settings, got {', '.join(spec)}")
        return CharVocab()
    unknown = set(spec) - {"model", "units", "case"}
    if unknown:
        raise ValueError(f"data.tokens: unknown key(s) {', '.join(sorted(unknown))} (sentencepiece takes model, "
                         "units, case)")
    if not spec.get("model"):
        raise ValueError("data.tokens.model: a sentencepiece token list needs its .model file "
                         "(set data.tokens.model=PATH)")

    def resolve(p: Any) -> Path | None:
        if p is None:
            return None
        path = Path(p).expanduser()
        return path if path.is_absolute() or base is None else base / path

    return SentencePieceVocab(resolve(spec["model"]), resolve(spec.get("units")),  # type: ignore[arg-type]
                              spec.get("case", "keep"))
