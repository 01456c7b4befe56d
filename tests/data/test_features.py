"""Log-mel features: frame rate, pitch placement, batching, floor, and real GRID speech."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from avtoolkit.data.features import LOG_FLOOR, LogMel

GRID = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid"


def sine(hz: float, seconds: float = 1.0, rate: int = 16000, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return amplitude * torch.sin(2 * math.pi * hz * t)


def test_hundred_frames_per_second_of_forty_mels():
    log_mel = LogMel()
    assert (log_mel.win_length, log_mel.hop_length, log_mel.frame_rate) == (400, 160, 100.0)
    feats = log_mel(sine(440, seconds=2.0))
    assert feats.shape == (201, 40) and feats.dtype == torch.float32
    assert log_mel.output_dim == 40


@pytest.mark.parametrize("num_samples", [201, 1000, 16000, 16159, 16160, 47648])
def test_num_frames_matches_the_output(num_samples):
    log_mel = LogMel()
    assert log_mel(torch.randn(num_samples) * 0.1).shape[0] == log_mel.num_frames(num_samples)


def test_higher_pitch_lands_in_a_higher_mel_band():
    log_mel = LogMel()
    band = {hz: int(log_mel(sine(hz))[20:80].mean(0).argmax()) for hz in (300, 1000, 4000)}
    assert band[300] < band[1000] < band[4000]


def test_batch_rows_equal_single_calls():
    log_mel = LogMel()
    batch = torch.stack([sine(300), sine(2000, amplitude=0.1)])
    out = log_mel(batch)
    assert out.shape == (2, 101, 40)
    torch.testing.assert_close(out[1], log_mel(batch[1]), atol=1e-4, rtol=1e-4)


def test_silence_sits_on_the_floor_and_louder_is_higher():
    log_mel = LogMel()
    assert torch.allclose(log_mel(torch.zeros(1600)), torch.tensor(math.log(LOG_FLOOR)))
    quiet, loud = log_mel(sine(1000, amplitude=0.05)), log_mel(sine(1000, amplitude=0.5))
    # 20 dB louder = 100x the power = +ln(100) in the log-mel at the tone's band.
    band = int(loud[50].argmax())
    assert (loud[50, band] - quiet[50, band]).item() == pytest.approx(math.log(100), abs=0.05)


def test_other_rates_and_bad_input():
    log_mel = LogMel(sample_rate=8000, n_mels=20, win_ms=32.0, hop_ms=20.0)
    assert (log_mel.win_length, log_mel.hop_length) == (256, 160)
    assert log_mel(torch.zeros(8000)).shape == (51, 20)
    with pytest.raises(ValueError, match="too short"):
        LogMel()(torch.zeros(100))
    with pytest.raises(ValueError, match=r"\[S\] or \[B, S\]"):
        LogMel()(torch.zeros(1, 1, 16000))


@pytest.mark.skipif(not (GRID / "video" / "bbaf2n.mpg").exists(),
                    reason=f"GRID sample clips not found at {GRID}")
def test_grid_speech_frames_carry_more_energy_than_silence():
    from avtoolkit.data.media import read_audio

    audio = torch.from_numpy(read_audio(GRID / "video" / "bbaf2n.mpg"))
    feats = LogMel()(audio)
    assert feats.shape == (LogMel().num_frames(len(audio)), 40)
    energy = feats.exp().sum(dim=1).log()
    # align/bbaf2n.align: silence to 0.95 s, speech 0.95-2.12 s (100 frames per second).
    assert energy[95:212].mean() > energy[10:85].mean() + 1.0
    assert torch.isfinite(feats).all()
