"""``data.noise_type: mixed``: babble or white noise per item, by chance; the other types draw as before."""

from __future__ import annotations

import numpy as np
import torch

from avtoolkit.data.noise import NoisyLogMel


class _OneTalker:
    """Babble that is a constant: easy to tell from white noise."""

    missing = "a talker"

    def others(self, item: object) -> list[str]:
        return ["other"]

    def load(self, other: object) -> torch.Tensor:
        return torch.full((16000,), 0.5)


def _noise(kind: str, seed: int) -> torch.Tensor:
    audio = NoisyLogMel(noise_snr_db=0.0, noise_prob=1.0, noise_type=kind, talkers=_OneTalker(), babble_talkers=1)
    clean = np.sin(np.linspace(0, 200, 16000)).astype(np.float32)
    return audio.noisy_wave(clean, "clip", torch.Generator().manual_seed(seed)) - torch.from_numpy(clean)


def test_mixed_gives_each_noise_type_about_half_the_time() -> None:
    babble = [float(_noise("mixed", seed).std()) < 1e-3 for seed in range(40)]  # a constant has no spread
    assert 10 <= sum(babble) <= 30


def test_babble_and_white_are_unchanged_by_mixed_existing() -> None:
    assert float(_noise("babble", 0).std()) < 1e-3 and float(_noise("white", 0).std()) > 0.1
    assert torch.equal(_noise("white", 3), _noise("white", 3))
