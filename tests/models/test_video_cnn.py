"""``video_cnn``: per-frame encoding of mouth crops."""

from __future__ import annotations

import pytest
import torch

from avtoolkit.models.encoders.video_cnn import VideoCNN


def test_frames_are_encoded_independently_and_padding_is_zero() -> None:
    torch.manual_seed(0)
    enc = VideoCNN().eval()
    clip = torch.rand(1, 10, 1, 64, 64)
    base, n = enc(clip, torch.tensor([8]))
    assert base.shape == (1, 10, 512) and n.tolist() == [8] and enc.output_rate == 25.0
    assert base[0, 8:].abs().max() == 0
    changed = clip.clone()
    changed[0, 3] = torch.rand(1, 64, 64)
    out, _ = enc(changed, torch.tensor([8]))
    differs = (out - base).abs().amax(dim=-1)[0]
    assert differs[3] > 0 and differs[[0, 1, 2, 4, 5, 6, 7]].max() == 0


def test_other_crop_sizes_and_rgb() -> None:
    enc = VideoCNN(in_channels=3, input_rate=30.0).eval()
    x, _ = enc(torch.rand(2, 4, 3, 96, 88), torch.tensor([4, 4]))
    assert x.shape == (2, 4, 512) and enc.output_rate == 30.0


def test_wrong_layout_is_named() -> None:
    with pytest.raises(ValueError, match=r"\[batch, time, 1, height, width\].*\(2, 4, 64, 64\)"):
        VideoCNN()(torch.rand(2, 4, 64, 64), torch.tensor([4, 4]))
