"""tcn and ms_tcn backends: length-preserving, dilated, masks respected."""

import pytest
import torch

from avtoolkit.models.backends.ms_tcn import MultiscaleTCNBackend
from avtoolkit.models.backends.tcn import TCNBackend


@pytest.mark.parametrize("make", [
    lambda: TCNBackend(input_dim=8, channels=12, layers=3),
    lambda: MultiscaleTCNBackend(input_dim=8, hidden=4, layers=3),
])
def test_length_kept_and_padding_ignored(make):
    torch.manual_seed(0)
    net = make().eval()
    clip = torch.randn(1, 11, 8)
    alone, n = net(clip, torch.tensor([11]))
    assert alone.shape[:2] == (1, 11) and n.tolist() == [11]
    padded, _ = net(torch.cat([clip, 100 * torch.randn(1, 5, 8)], 1), torch.tensor([11]))
    torch.testing.assert_close(padded[:, :11], alone, atol=1e-5, rtol=1e-5)
    assert torch.all(padded[:, 11:] == 0)


def test_dilation_doubles_per_block():
    net = TCNBackend(input_dim=4, channels=4, layers=4)
    assert [b.conv1.dilation[0] for b in net.blocks] == [1, 2, 4, 8]


def test_receptive_field_spans_the_clip():
    net = TCNBackend(input_dim=1, channels=4, layers=3).eval()
    x = torch.zeros(1, 29, 1)
    base, _ = net(x, torch.tensor([29]))
    x[0, 0, 0] = 1.0
    moved, _ = net(x, torch.tensor([29]))
    # kernel 3, two convs per block, dilations 1,2,4: frame 0 reaches 2*(1+2+4) = 14 frames on
    assert not torch.allclose(base[0, 14], moved[0, 14])
    torch.testing.assert_close(base[0, 15:], moved[0, 15:])


def test_ms_tcn_matches_mpc001_width_and_size():
    net = MultiscaleTCNBackend(input_dim=512)  # mpc001 lrw_resnet18_mstcn: hidden 256 x kernels 3,5,7
    assert net.output_dim == 768
    assert 22e6 < sum(p.numel() for p in net.parameters()) < 25e6


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="odd"):
        TCNBackend(input_dim=4, kernel_size=4)
    with pytest.raises(ValueError, match="odd"):
        MultiscaleTCNBackend(input_dim=4, kernel_sizes=[3, 4])
