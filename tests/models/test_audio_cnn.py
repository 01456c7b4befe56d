"""``audio_cnn``: rates, lengths, padding independence, input checks."""

from __future__ import annotations

import pytest
import torch

from avtoolkit import build_model
from avtoolkit.models.encoders.audio_cnn import AudioCNN


def test_subsamples_100hz_log_mel_to_25hz_for_character_ctc() -> None:
    enc = AudioCNN().eval()
    assert (enc.time_stride, enc.output_rate, enc.output_dim) == (4, 25.0, 512)
    # 5 s of log-mel at 100 Hz -> 125 frames, one per video frame at 25 fps.
    x, n = enc(torch.randn(1, 501, 40), torch.tensor([501]))
    assert x.shape == (1, 126, 512) and n.tolist() == [126]
    faster = AudioCNN(time_subsampling=1)
    assert faster.output_rate == 50.0


def test_padding_does_not_change_the_output() -> None:
    torch.manual_seed(0)
    enc = AudioCNN().eval()
    short = torch.randn(1, 117, 40)
    alone, n_alone = enc(short, torch.tensor([117]))
    batch = torch.cat([torch.nn.functional.pad(short, (0, 0, 0, 83), value=3.0), torch.randn(1, 200, 40)])
    padded, n = enc(batch, torch.tensor([117, 200]))
    assert n.tolist() == [30, 50]
    # Every valid frame is identical, up to the last; padded frames are exactly zero.
    torch.testing.assert_close(padded[0, :30], alone[0], atol=1e-5, rtol=1e-5)
    assert padded[0, 30:].abs().max() == 0


def test_wrong_feature_size_is_named() -> None:
    with pytest.raises(ValueError, match=r"\[batch, time, 40\].*\(2, 100, 80\)"):
        AudioCNN()(torch.randn(2, 100, 80), torch.tensor([100, 100]))


def test_audio_only_recipe_model_transcribes_a_batch() -> None:
    model = build_model({"model": {"encoders": {"audio": {"name": "audio_cnn"}}, "head": {"name": "ctc"}}}).eval()
    out = model({"audio": torch.randn(2, 300, 40), "audio_lengths": torch.tensor([300, 200])})
    assert out["log_probs"].shape == (2, 75, 29) and out["lengths"].tolist() == [75, 50]


def test_freq_subsampling_keeps_mel_bands_and_padding_independence():
    enc = AudioCNN(freq_subsampling=0, time_subsampling=1).eval()
    assert enc.fc[0].in_features == 128 * 40  # every band reaches the FC layers
    x = torch.randn(1, 120, 40)
    alone, n = enc(x, torch.tensor([120]))
    padded, _ = enc(torch.cat([x, torch.randn(1, 40, 40)], 1), torch.tensor([120]))
    assert n.tolist() == [60] and torch.allclose(alone, padded[:, :60], atol=1e-5)
    with pytest.raises(ValueError, match="freq_subsampling"):
        AudioCNN(freq_subsampling=4)
