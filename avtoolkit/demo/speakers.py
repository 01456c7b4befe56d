"""Synthetic speakers: a voice and a face each, drawn from one seeded generator."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Speaker:
    """Everything that makes one synthetic speaker look and sound like themself.

    Voice: ``f0`` (Hz, mean pitch), ``formant_scale`` (vocal-tract length: ~1.0 male,
    ~1.17 female), ``rate`` (duration multiplier, >1 is slower), ``breathiness``
    (aspiration noise mixed into voicing), ``tilt`` (spectral slope, dB/octave).
    Face: ``face_w``/``face_h`` (ellipse half-axes, px at 256x256), ``skin``/``lip``/
    ``background`` (RGB), ``mouth_scale`` (lip size), ``light`` (-1 lit from the left ..
    1 from the right), ``brightness``.
    """

    id: str
    f0: float
    formant_scale: float
    rate: float
    breathiness: float
    tilt: float
    face_w: float
    face_h: float
    skin: tuple[int, int, int]
    lip: tuple[int, int, int]
    background: tuple[int, int, int]
    mouth_scale: float
    light: float
    brightness: float

    def to_dict(self) -> dict:
        return asdict(self)


_SKIN_TONES = np.array(
    [(241, 194, 167), (224, 172, 138), (198, 134, 96), (161, 102, 68), (112, 70, 45), (236, 188, 150)],
    dtype=np.float64,
)


def sample_speaker(speaker_id: str, rng: np.random.Generator) -> Speaker:
    """Draws one speaker; the same generator state always gives the same speaker.

    Examples:
        >>> a = sample_speaker("s01", np.random.default_rng(0))
        >>> b = sample_speaker("s01", np.random.default_rng(0))
        >>> a == b and 70 < a.f0 < 260
        True
    """
    female = rng.random() < 0.5
    f0 = rng.uniform(170, 240) if female else rng.uniform(85, 140)
    formant_scale = rng.uniform(1.10, 1.22) if female else rng.uniform(0.92, 1.04)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.9, 1.08, 3)
    lip = skin * np.array([0.85, 0.55, 0.55]) * rng.uniform(0.85, 1.05)
    background = rng.uniform(30, 200, 3)
    return Speaker(
        id=speaker_id,
        f0=float(f0),
        formant_scale=float(formant_scale),
        rate=float(rng.uniform(0.85, 1.2)),
        breathiness=float(rng.uniform(0.02, 0.12)),
        tilt=float(rng.uniform(-7.0, -4.0)),
        face_w=float(rng.uniform(70, 86)),
        face_h=float(rng.uniform(96, 110)),
        skin=tuple(int(c) for c in np.clip(skin, 0, 255)),
        lip=tuple(int(c) for c in np.clip(lip, 0, 255)),
        background=tuple(int(c) for c in background),
        mouth_scale=float(rng.uniform(0.85, 1.15)),
        light=float(rng.uniform(-1, 1)),
        brightness=float(rng.uniform(0.75, 1.15)),
    )
