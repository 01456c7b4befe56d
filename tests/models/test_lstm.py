"""The ``lstm`` backend: padding never reaches valid frames, and its steps are its whole-sequence pass."""

from __future__ import annotations

import torch

from avtoolkit.models.backends.lstm import LSTMBackend


def test_padding_does_not_change_a_clip_either_way() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 5, 4)
    for bidirectional in (False, True):
        lstm = LSTMBackend(input_dim=4, hidden=6, bidirectional=bidirectional).eval()
        alone, _ = lstm(x[:, :3], torch.tensor([3]))
        padded, _ = lstm(x, torch.tensor([3]))
        torch.testing.assert_close(padded[:, :3], alone, atol=1e-6, rtol=0)
        assert lstm.output_dim == (12 if bidirectional else 6) and lstm.causal is not bidirectional


def test_steps_from_one_row_broadcast_to_a_beam() -> None:
    torch.manual_seed(0)
    lstm = LSTMBackend(input_dim=4, hidden=6, layers=2).eval()
    x = torch.randn(3, 4, 4)
    with torch.no_grad():
        full, _ = lstm(x, torch.tensor([4, 4, 4]))
        y, state = lstm.step(x[:1, :1], None)  # one row, as a search starts
        y, state = lstm.step(x[:, 1:2], LSTMBackend.select_state(state, torch.tensor([0])))  # broadcast to three
    first, _ = lstm(torch.cat([x[:1, :1].expand(3, -1, -1), x[:, 1:2]], 1), torch.tensor([2, 2, 2]))
    torch.testing.assert_close(y[:, 0], first[:, 1], atol=1e-6, rtol=0)
    assert full.shape == (3, 4, 6)
