"""A character language model for shallow fusion in joint CTC/attention beam search.

``CharLSTMLM`` is a small LSTM over the recipe's tokens (the CTC vocabulary, blank first); the
blank id 0 is its start and end token, as for the attention decoder, so it scores exactly the
sequences the search grows. It offers the decoder-step interface of
:mod:`avtoolkit.decoding.joint_search` (``init_state`` / ``step_state`` / ``select_state``):
one LSTM step per hypothesis per search step.

Why an LSTM and not a Transformer: at GRID's size (27 characters, 25-character sentences) a
one-layer LSTM of width 128 learns the grammar in seconds on a CPU, and its state is two small
tensors (no cache growing with the length).

The recipe route is ``avtoolkit run grid_lm`` (the same architecture as registered components:
``token_embedding -> lstm -> lm``, with a run folder, resume, validation perplexity and the ASR
recipe's own split; :mod:`avtoolkit.models.stepwise_lm` reads its checkpoint as ``decoding.lm``).
This module stays for the ``.pt`` files already made. Train with :func:`train_lm` on transcripts (one sentence a line, or GRID alignment files via
:func:`grid_transcripts`); save and load with :meth:`CharLSTMLM.save` / :meth:`CharLSTMLM.load`
(a plain ``.pt`` of config and weights, read with ``weights_only=True``).

Examples:
    >>> from avtoolkit.data.text import CHARACTERS
    >>> lm = train_lm(["bin blue"] * 4, CHARACTERS, epochs=20, dim=16, lr=1e-2, seed=0)
    >>> lm.perplexity(["bin blue"]) < lm.perplexity(["blue bin"])
    True
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

#: start and end token: the CTC blank, never a character of a transcript.
SOS_EOS = 0


class CharLSTMLM(nn.Module):
    """An LSTM language model over token ids (id 0 starts and ends every sentence).

    Args:
        vocab_size: tokens including the blank.
        dim: embedding and LSTM width.
        layers: LSTM layers.
        dropout: between LSTM layers and before the output (training only).
    """

    def __init__(self, vocab_size: int, dim: int = 128, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.config = {"vocab_size": vocab_size, "dim": dim, "layers": layers, "dropout": dropout}
        self.embed = nn.Embedding(vocab_size, dim)
        self.lstm = nn.LSTM(dim, dim, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, vocab_size)

    def forward(self, prev: Tensor) -> Tensor:
        """Next-token log-probabilities ``[B, L, V]`` at every position of ``prev [B, L]`` (starting with 0)."""
        h, _ = self.lstm(self.embed(prev))
        return self.out(self.drop(h)).log_softmax(-1)

    # The decoder-step interface of avtoolkit.decoding.joint_search (memory is ignored: an LM reads no input).
    def init_state(self, memory: Tensor | None = None, memory_lengths: Tensor | None = None) -> Any:
        """No token fed yet: ``None`` (the LSTM's zero state, broadcast to the first step's rows)."""
        return None

    def step_state(self, state: Any, tokens: Tensor) -> tuple[Tensor, Any]:
        """Feed ``tokens [N]``; the next token's log-probabilities ``[N, V]`` and the new ``(h, c)``."""
        tokens = tokens.to(self.embed.weight.device)
        h, state = self.lstm(self.embed(tokens)[:, None], state)
        return self.out(h[:, 0]).log_softmax(-1), state

    def select_state(self, state: Any, index: Tensor) -> Any:
        """Rows ``index`` of the state (the beam's survivors)."""
        index = index.to(self.embed.weight.device)
        return None if state is None else (state[0].index_select(1, index), state[1].index_select(1, index))

    def sentence_log_prob(self, ids: Sequence[int]) -> float:
        """``log p(ids, end)`` of one sentence (token ids without start/end)."""
        prev = torch.tensor([[SOS_EOS, *ids]])
        nxt = torch.tensor([*ids, SOS_EOS])
        with torch.no_grad():
            return float(self(prev)[0].gather(1, nxt[:, None]).sum())

    def perplexity(self, texts: Sequence[str], tokens: Sequence[str] | None = None) -> float:
        """Per-token perplexity (end tokens counted) of ``texts``, in eval mode."""
        from avtoolkit.data.text import CHARACTERS

        index = {t: i for i, t in enumerate(tokens or CHARACTERS)}
        was = self.training
        self.eval()
        total, count = 0.0, 0
        for text in texts:
            ids = encode(text, index)
            total += self.sentence_log_prob(ids)
            count += len(ids) + 1
        self.train(was)
        return math.exp(-total / max(count, 1))

    def save(self, path: str | Path) -> None:
        """Config and weights in one ``.pt`` (written atomically)."""
        from avtoolkit.atomic import atomic_write

        with atomic_write(path) as fh:
            torch.save({"kind": "char_lstm_lm", "config": self.config, "state_dict": self.state_dict()}, fh)

    @classmethod
    def load(cls, path: str | Path) -> "CharLSTMLM":
        """A model saved by :meth:`save`, in eval mode.

        Raises:
            UsageError: the file is missing or not a saved ``CharLSTMLM`` (exit code 2 from the CLI).
        """
        from avtoolkit.errors import UsageError

        if not Path(path).is_file():
            raise UsageError(f"decoding.lm: {path}: no such file (a character LM .pt from avtoolkit.models.lm)")
        try:
            blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UsageError(f"decoding.lm: {path}: not a character LM saved by avtoolkit ({exc})") from exc
        if not isinstance(blob, dict) or blob.get("kind") != "char_lstm_lm":
            raise UsageError(f"decoding.lm: {path}: not a character LM saved by avtoolkit (CharLSTMLM.save)")
        lm = cls(**blob["config"])
        lm.load_state_dict(blob["state_dict"])
        return lm.eval()


def encode(text: str, index: dict[str, int]) -> list[int]:
    """Token ids of ``text`` (normalised; characters outside the vocabulary dropped)."""
    from avtoolkit.data.text import normalize_text

    return [index[c] for c in normalize_text(text) if c in index and index[c] != SOS_EOS]


def grid_transcripts(align_dir: str | Path) -> list[str]:
    """The sentences of GRID alignment files (``*.align``: ``start end word`` lines; ``sil``/``sp`` dropped), by file name."""
    texts = []
    for path in sorted(Path(align_dir).rglob("*.align")):
        words = [parts[2] for line in path.read_text(encoding="utf-8").splitlines()
                 if len(parts := line.split()) == 3 and parts[2] not in ("sil", "sp")]
        texts.append(" ".join(words))
    return texts


def train_lm(texts: Sequence[str], tokens: Sequence[str], epochs: int = 10, dim: int = 128, layers: int = 1,
             lr: float = 3e-3, batch_size: int = 32, dropout: float = 0.0, seed: int = 0) -> CharLSTMLM:
    """Train a :class:`CharLSTMLM` on ``texts`` with Adam and teacher forcing; returns it in eval mode.

    Raises:
        ValueError: no text with any token of the vocabulary.
    """
    index = {t: i for i, t in enumerate(tokens)}
    seqs = [s for s in (encode(t, index) for t in texts) if s]
    if not seqs:
        raise ValueError("train_lm: no training sentence has a character of the vocabulary")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    lm = CharLSTMLM(len(tokens), dim=dim, layers=layers, dropout=dropout)
    opt = torch.optim.Adam(lm.parameters(), lr=lr)
    lm.train()
    for _ in range(epochs):
        order = torch.randperm(len(seqs), generator=gen).tolist()
        for start in range(0, len(order), batch_size):
            batch = [seqs[i] for i in order[start: start + batch_size]]
            width = max(len(s) for s in batch) + 1
            prev = torch.zeros(len(batch), width, dtype=torch.long)
            nxt = torch.full((len(batch), width), -100, dtype=torch.long)  # -100: padding, no loss
            for i, s in enumerate(batch):
                prev[i, 1: len(s) + 1] = torch.tensor(s)
                nxt[i, : len(s)] = torch.tensor(s)
                nxt[i, len(s)] = SOS_EOS
            loss = nn.functional.nll_loss(lm(prev).flatten(0, 1), nxt.flatten(), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return lm.eval()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m avtoolkit.models.lm TEXTS --out lm.pt``: train on a transcript file (one sentence a
    line) or a folder of GRID ``.align`` files, print held-out perplexity, save."""
    import argparse

    from avtoolkit.data.text import CHARACTERS
    from avtoolkit.errors import UsageError

    p = argparse.ArgumentParser(description=main.__doc__.splitlines()[0] if main.__doc__ else None)
    p.add_argument("texts", help="transcript file (one sentence a line) or a folder of GRID .align files")
    p.add_argument("--out", required=True, help="where to save the LM (.pt)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--held-out", type=float, default=0.1, help="fraction of sentences (the last ones) kept for perplexity")
    args = p.parse_args(argv)
    src = Path(args.texts)
    if src.is_dir():
        texts = grid_transcripts(src)
    elif src.is_file():
        texts = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        raise UsageError(f"{src}: no such transcript file or alignment folder")
    if not texts:
        raise UsageError(f"{src}: no sentences found")
    cut = max(1, int(len(texts) * (1 - args.held_out))) if len(texts) > 1 else len(texts)
    lm = train_lm(texts[:cut], CHARACTERS, epochs=args.epochs, dim=args.dim)
    if texts[cut:]:
        print(f"held-out perplexity: {lm.perplexity(texts[cut:]):.3f} ({len(texts) - cut} sentences)")
    lm.save(args.out)
    print(f"saved {args.out} ({cut} training sentences)")
    return 0


if __name__ == "__main__":
    import sys

    from avtoolkit.errors import UsageError

    try:
        raise SystemExit(main())
    except UsageError as exc:  # bad input: one line and exit code 2, as the avtoolkit commands do
        print(f"avtoolkit.models.lm: {exc}", file=sys.stderr)
        raise SystemExit(2)
