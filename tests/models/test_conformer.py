"""conformer backend: torchaudio's arithmetic, exact padding, batch independence, the recipe variant."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avtoolkit import build_model
from avtoolkit.models.backends.conformer import ConformerBackend

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _backend(**kwargs: object) -> ConformerBackend:
    torch.manual_seed(0)
    args = {"input_dim": 16, "dim": 32, "layers": 2, "heads": 4, "kernel_size": 7, **kwargs}
    return ConformerBackend(**args).eval()  # type: ignore[arg-type]


def test_unpadded_batch_matches_torchaudio_conformer() -> None:
    """With no padding our batch-first loop computes exactly what torchaudio's own forward does."""
    backend = _backend()
    x, lengths = torch.randn(3, 11, 16), torch.tensor([11, 11, 11])
    with torch.no_grad():
        ours, out_lengths = backend(x, lengths)
        theirs, _ = backend.conformer(backend.proj(x), lengths)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert out_lengths.tolist() == [11, 11, 11] and ours.shape == (3, 11, 32)


@pytest.mark.parametrize("convolution_first", [False, True])
def test_padding_does_not_change_a_clip(convolution_first: bool) -> None:
    """A clip padded with loud garbage inside a longer batch gives its unpadded output, and zeros after."""
    backend = _backend(convolution_first=convolution_first)
    clip = torch.randn(1, 6, 16)
    with torch.no_grad():
        alone, _ = backend(clip, torch.tensor([6]))
        batch = torch.cat([torch.cat([clip, 100 * torch.randn(1, 5, 16)], 1), torch.randn(1, 11, 16)])
        padded, lengths = backend(batch, torch.tensor([6, 11]))
    torch.testing.assert_close(padded[:1, :6], alone, atol=1e-5, rtol=1e-5)
    assert torch.all(padded[0, 6:] == 0) and lengths.tolist() == [6, 11]


def test_torchaudio_alone_would_leak_padding_into_the_clip() -> None:
    """Why the backend has its own loop: torchaudio's convolution module reads padded frames."""
    backend = _backend()
    clip = torch.randn(1, 6, 16)
    garbage = torch.cat([clip, 100 * torch.randn(1, 5, 16)], 1)
    with torch.no_grad():
        alone, _ = backend.conformer(backend.proj(clip), torch.tensor([6]))
        # torchaudio sizes its mask by the longest length, so give it a full-length partner.
        leaked, _ = backend.conformer(backend.proj(torch.cat([garbage, garbage])), torch.tensor([6, 11]))
    assert not torch.allclose(leaked[:1, :6], alone, atol=1e-3)


def test_one_clip_does_not_change_when_another_changes() -> None:
    backend = _backend()
    x = torch.randn(2, 9, 16)
    with torch.no_grad():
        y1, _ = backend(x, torch.tensor([9, 6]))
        x2 = x.clone()
        x2[1] = 5 * torch.randn(9, 16)
        y2, _ = backend(x2, torch.tensor([9, 4]))
    torch.testing.assert_close(y1[0], y2[0], atol=1e-5, rtol=1e-5)


def test_it_learns_a_task_that_needs_temporal_context() -> None:
    """Predicting the previous frame's sign needs context; a few Adam steps get most frames right."""
    torch.manual_seed(1)
    backend = ConformerBackend(input_dim=1, dim=16, layers=1, heads=2, kernel_size=3, dropout=0.0)
    readout = torch.nn.Linear(16, 1)
    params = [*backend.parameters(), *readout.parameters()]
    opt = torch.optim.Adam(params, lr=2e-2)
    x = torch.randn(16, 20, 1)
    target = (torch.roll(x, 1, dims=1) > 0).float()[:, 1:]
    lengths = torch.full((16,), 20)
    for _ in range(40):
        y, _ = backend(x, lengths)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(readout(y)[:, 1:], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    backend.eval()
    with torch.no_grad():
        y, _ = backend(x, lengths)
    accuracy = ((readout(y)[:, 1:] > 0).float() == target).float().mean()
    assert accuracy > 0.9


def test_width_and_argument_checks() -> None:
    assert ConformerBackend(input_dim=24, layers=1, heads=4).output_dim == 24
    assert isinstance(ConformerBackend(input_dim=24, layers=1, heads=4).proj, torch.nn.Identity)
    assert ConformerBackend(input_dim=24, dim=32, layers=1).output_dim == 32
    with pytest.raises(ValueError, match="divisible"):
        ConformerBackend(input_dim=30, heads=4)
    with pytest.raises(ValueError, match="odd"):
        ConformerBackend(input_dim=32, kernel_size=4)


def test_avasr_conformer_recipe_swaps_only_the_backend() -> None:
    """The recipe variant keeps avasr's encoders and fusion and stays about the TCN's size."""
    base = build_model(RECIPES / "avasr.yaml")
    conformer = build_model(RECIPES / "avasr_conformer.yaml")
    assert [type(b) for b in conformer.backends] == [ConformerBackend]
    assert conformer.backends[0].output_dim == base.backends[0].output_dim

    def params(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    assert params(conformer.encoders) == params(base.encoders) and params(conformer.fusion) == params(base.fusion)
    assert 0.8 < params(conformer.backends) / params(base.backends) < 1.25
    assert params(conformer) < 5_000_000
