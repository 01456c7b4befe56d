"""Backend ``lstm``: an LSTM over the sequence; unidirectional by default, so it can run one step at a time."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from avtoolkit.models.contract import Backend
from avtoolkit.registry.kinds import BACKENDS


@BACKENDS.register("lstm")
class LSTMBackend(Backend):
    """A (stacked) LSTM; ``causal`` unless ``bidirectional``, with :meth:`step` for incremental decoding.

    Padding is packed away, so a padded frame never reaches a valid one (nor, bidirectional, the
    backward pass). A causal backend (each output sees only its own and earlier inputs) is what a
    language model needs: the ``language_model`` objective refuses any other, since a model that
    sees the next token learns to copy it.

    Args:
        input_dim: features per input step (injected by the assembler).
        hidden: LSTM width per direction.
        layers: stacked layers.
        dropout: between layers, in training.
        bidirectional: read the sequence both ways (output ``2 * hidden``; no :meth:`step`).

    Examples:
        >>> import torch
        >>> lstm = LSTMBackend(input_dim=4, hidden=6).eval()
        >>> x = torch.randn(1, 3, 4)
        >>> y, n = lstm(x, torch.tensor([3]))
        >>> y1, state = lstm.step(x[:, :1], None)
        >>> y2, state = lstm.step(x[:, 1:2], state)
        >>> bool(torch.allclose(y[:, 1], y2[:, 0], atol=1e-6)), lstm.causal
        (True, True)
    """

    def __init__(self, input_dim: int, hidden: int = 256, layers: int = 1, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden, layers, batch_first=True, bidirectional=bidirectional,
                            dropout=dropout if layers > 1 else 0.0)
        self.causal = not bidirectional
        self.output_dim = hidden * (2 if bidirectional else 1)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        packed = pack_padded_sequence(x, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return y, lengths

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        """One step ``x [N, 1, input_dim] -> [N, 1, output_dim]`` from ``state`` (``None``: the start).

        A one-row state is broadcast to ``N`` rows (the search starts from one hypothesis).

        Raises:
            ValueError: a bidirectional LSTM (its outputs need the whole sequence).
        """
        if not self.causal:
            raise ValueError("a bidirectional lstm cannot run one step at a time (set bidirectional: false)")
        if state is not None and state[0].shape[1] == 1 and x.shape[0] > 1:
            state = tuple(s.expand(-1, x.shape[0], -1).contiguous() for s in state)
        return self.lstm(x, state)

    @staticmethod
    def select_state(state: Any, index: Tensor) -> Any:
        """Rows ``index`` of a :meth:`step` state (the beam's survivors; repeats allowed)."""
        if state is None:
            return None
        index = index.to(state[0].device)
        return tuple(s.index_select(1, index) for s in state)
