"""transformer backend: batch independence, padding, positions."""

import pytest
import torch

from avtoolkit.models.backends.transformer import TransformerBackend


@pytest.fixture
def backend():
    torch.manual_seed(0)
    return TransformerBackend(input_dim=16, dim=32, layers=2, heads=4).eval()


def test_one_sample_does_not_change_when_another_changes(backend):
    x = torch.randn(2, 9, 16)
    lengths = torch.tensor([9, 6])
    y1, _ = backend(x, lengths)
    x2 = x.clone()
    x2[1] = torch.randn(9, 16) * 5
    y2, _ = backend(x2, torch.tensor([9, 4]))
    torch.testing.assert_close(y1[0], y2[0], atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_a_clip(backend):
    clip = torch.randn(1, 6, 16)
    alone, _ = backend(clip, torch.tensor([6]))
    padded, _ = backend(torch.cat([clip, torch.randn(1, 4, 16)], 1), torch.tensor([6]))
    torch.testing.assert_close(padded[:, :6], alone, atol=1e-5, rtol=1e-5)
    assert torch.all(padded[:, 6:] == 0)


def test_positions_matter(backend):
    x = torch.randn(1, 6, 16)
    y, _ = backend(x, torch.tensor([6]))
    y_rev, _ = backend(x.flip(1), torch.tensor([6]))
    assert not torch.allclose(y.flip(1), y_rev, atol=1e-3)


def test_output_dim_and_heads_check():
    assert TransformerBackend(input_dim=24, layers=1, heads=4).output_dim == 24
    with pytest.raises(ValueError, match="divisible"):
        TransformerBackend(input_dim=30, heads=4)
