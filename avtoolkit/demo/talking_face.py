"""Renders a talking face whose lips follow a mouth-parameter track.

Frames are face-centred like LRW's: at 256x256 the mouth centre sits at row
:data:`MOUTH_CENTRE` ``[0]``, column ``[1]``, so LRW's usual fixed 96x96 mouth crop (rows
115..211, columns 80..176) lands on the lips. The static parts of a face (background,
head, eyes, nose) are drawn once per clip; each frame then gets its lips, an occasional
blink, a small head movement, lighting, and camera noise (the codec adds compression).
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from avtoolkit.demo.speakers import Speaker

FRAME_SIZE = 256
#: (row, column) of the mouth centre in a 256x256 frame.
MOUTH_CENTRE = (163, 128)
_SHIFT = 4  # cv2 sub-pixel bits: smooth lip motion instead of 1-pixel jumps
_S = 1 << _SHIFT
_NOISE_BANK: np.ndarray | None = None


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _S)), int(round(y * _S))


def _ax(a: float, b: float) -> tuple[int, int]:
    return int(round(max(a, 0.0) * _S)), int(round(max(b, 0.0) * _S))


def _static_face(spk: Speaker, rng: np.random.Generator) -> np.ndarray:
    """Background, head, eyes, brows and nose (RGB uint8), drawn once per clip."""
    n = FRAME_SIZE
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    bg = np.asarray(spk.background, np.float32)
    img = bg * (0.8 + 0.35 * (0.6 * xx + 0.4 * yy))[..., None]
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    cx, cy = 128.0, 128.0 + rng.uniform(-3, 3)
    skin = spk.skin
    dark = tuple(int(c * 0.55) for c in skin)
    # Hair and eye colour belong to the speaker, not the clip.
    own = np.random.default_rng(zlib.crc32(spk.id.encode()))
    hair = tuple(int(v) for v in own.uniform(10, 90, 3))
    aa = cv2.LINE_AA
    cv2.ellipse(img, _pt(cx, cy + 8), _ax(spk.face_w + 14, 30), 0, 0, 360, dark, -1, aa, _SHIFT)  # neck
    cv2.ellipse(img, _pt(cx - spk.face_w, cy), _ax(9, 18), 0, 0, 360, dark, -1, aa, _SHIFT)  # ears
    cv2.ellipse(img, _pt(cx + spk.face_w, cy), _ax(9, 18), 0, 0, 360, dark, -1, aa, _SHIFT)
    cv2.ellipse(img, _pt(cx, cy - 18), _ax(spk.face_w + 6, spk.face_h - 8), 0, 180, 360, hair, -1, aa, _SHIFT)
    cv2.ellipse(img, _pt(cx, cy), _ax(spk.face_w, spk.face_h), 0, 0, 360, skin, -1, aa, _SHIFT)
    cv2.ellipse(img, _pt(cx, cy - spk.face_h + 12), _ax(spk.face_w - 6, 22), 0, 180, 360, hair, -1, aa, _SHIFT)
    eye_y, eye_dx = 100.0 + rng.uniform(-3, 3), 30.0 + rng.uniform(-3, 4)
    iris = tuple(int(v) for v in own.uniform(20, 120, 3))
    for sx in (-1, 1):
        ex = cx + sx * eye_dx
        cv2.ellipse(img, _pt(ex, eye_y), _ax(13, 6.5), 0, 0, 360, (235, 235, 230), -1, aa, _SHIFT)
        cv2.circle(img, _pt(ex, eye_y), int(5.5 * _S), iris, -1, aa, _SHIFT)
        cv2.circle(img, _pt(ex, eye_y), int(2.5 * _S), (10, 10, 10), -1, aa, _SHIFT)
        cv2.line(img, _pt(ex - 14, eye_y - 14), _pt(ex + 12, eye_y - 16 + sx * 1.5), hair, 3, aa, _SHIFT)
    nose = tuple(int(c * 0.78) for c in skin)
    cv2.line(img, _pt(cx - 2, eye_y + 6), _pt(cx - 5, 135), nose, 2, aa, _SHIFT)
    cv2.ellipse(img, _pt(cx, 137), _ax(10, 5), 0, 0, 180, nose, 2, aa, _SHIFT)
    return img


def _draw_mouth(img: np.ndarray, params: np.ndarray, spk: Speaker, dy: float) -> None:
    """Lips, inner mouth, teeth and tongue for one frame's (open, width, round, teeth, tongue)."""
    opening, width, rounding, teeth, tongue = (float(v) for v in params)
    s = spk.mouth_scale
    cy, cx = MOUTH_CENTRE[0] + dy, float(MOUTH_CENTRE[1])
    half_w = s * (15 + 15 * width) * (1 - 0.3 * rounding)
    inner_h = s * 17 * max(opening, 0.0)
    lip = s * (4.5 + 4 * rounding)  # rounded lips protrude and look fuller
    aa = cv2.LINE_AA
    lip_rgb = spk.lip
    cv2.ellipse(img, _pt(cx, cy), _ax(half_w + 2, inner_h + lip), 0, 0, 360, lip_rgb, -1, aa, _SHIFT)
    if inner_h < 1.2:
        seam = tuple(int(c * 0.45) for c in lip_rgb)
        cv2.ellipse(img, _pt(cx, cy), _ax(half_w * 0.92, 0.8), 0, 0, 360, seam, -1, aa, _SHIFT)
        return
    cv2.ellipse(img, _pt(cx, cy), _ax(half_w * 0.9, inner_h), 0, 0, 360, (55, 18, 22), -1, aa, _SHIFT)
    if tongue > 0.2:
        cv2.ellipse(img, _pt(cx, cy + inner_h * 0.25), _ax(half_w * 0.5, inner_h * 0.6 * tongue), 0, 0, 360, (190, 90, 100), -1, aa, _SHIFT)
    if teeth > 0.1:
        t_h = min(6.0 * s, 1.6 * inner_h) * teeth
        cv2.ellipse(img, _pt(cx, cy - inner_h), _ax(half_w * 0.72, t_h), 0, 0, 180, (238, 236, 225), -1, aa, _SHIFT)


def _noise_bank() -> np.ndarray:
    """Camera-noise frames ``[level, frame, sign, H, W, 3]`` (uint8), made once.

    Drawing fresh Gaussian noise for every frame cost more than everything else in the
    renderer; a fixed bank of noise frames picked at random looks the same to a model.
    Positive and negative parts are kept apart so saturating ``cv2.add``/``cv2.subtract``
    apply them without a float copy of the clip.
    """
    global _NOISE_BANK
    if _NOISE_BANK is None:
        bank_rng = np.random.default_rng(1234)
        g = bank_rng.normal(0, 1, (1, 12, FRAME_SIZE, FRAME_SIZE, 3))
        g = g * np.array([3.0, 5.0, 8.0])[:, None, None, None, None]
        _NOISE_BANK = np.stack([np.clip(g, 0, 255), np.clip(-g, 0, 255)], axis=2).round().astype(np.uint8)
    return _NOISE_BANK


def render_face(mouth: np.ndarray, spk: Speaker, rng: np.random.Generator, size: int = FRAME_SIZE) -> np.ndarray:
    """Frames of ``spk``'s face speaking with lip parameters ``mouth``.

    Args:
        mouth: ``[frames, 5]`` (open, width, round, teeth, tongue) per video frame.
        spk: the speaker (face shape, colours, lighting).
        rng: randomness for head movement, blinks and noise.
        size: output frame side in pixels; the layout scales with it (the mouth stays at
            the same fractions of the frame).

    Returns:
        uint8 ``[frames, size, size, 3]`` RGB.

    Examples:
        >>> from avtoolkit.demo.speakers import sample_speaker
        >>> spk = sample_speaker("s1", np.random.default_rng(0))
        >>> render_face(np.zeros((3, 5)), spk, np.random.default_rng(0)).shape
        (3, 256, 256, 3)
    """
    n = FRAME_SIZE
    t = len(mouth)
    # Lighting from one side and per-speaker brightness, applied once to the static face;
    # the lips get the brightness at the face centre.
    xs = (np.arange(n, dtype=np.float32) - n / 2) / (n / 2)
    light = spk.brightness * (1 + 0.3 * spk.light * xs)[None, :, None]
    base = np.clip(_static_face(spk, rng) * light, 0, 255).astype(np.uint8)
    lit = _lit(spk)
    # Head movement: a smoothed random walk (pixels / degrees), small like a seated speaker.
    walk = np.cumsum(rng.normal(0, 0.5, (t, 4)), axis=0)
    walk -= walk.mean(axis=0)
    shift_x, shift_y = np.clip(walk[:, 0], -4, 4), np.clip(walk[:, 1], -4, 4)
    angle, scale = np.clip(walk[:, 2], -3, 3), 1 + np.clip(walk[:, 3], -3, 3) * 0.01
    blink_at = set(np.flatnonzero(rng.random(t) < 0.03).tolist())
    bank = _noise_bank()[int(rng.integers(3))]
    picks = rng.integers(len(bank), size=t)
    frames = np.empty((t, size, size, 3), np.uint8)
    zoom = size / n  # the warp below also scales, so a smaller frame costs no extra resize
    for i in range(t):
        img = base.copy()
        _draw_mouth(img, mouth[i], lit, dy=0.0)
        if i in blink_at:
            for sx in (-1, 1):
                cv2.ellipse(img, _pt(128 + sx * 31, 100), _ax(15, 9), 0, 0, 360, lit.skin, -1, cv2.LINE_AA, _SHIFT)
        m = cv2.getRotationMatrix2D((128.0, 150.0), float(angle[i]), float(scale[i]))
        m[:, 2] += (shift_x[i], shift_y[i])
        m *= zoom
        img = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        noise = bank[picks[i], :, :size, :size]
        cv2.subtract(cv2.add(img, noise[0]), noise[1], dst=frames[i])
    return frames


def _lit(spk: Speaker) -> Speaker:
    """``spk`` with skin and lip colours at the face centre's brightness."""
    import dataclasses

    def scale(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
        return tuple(int(min(255, c * spk.brightness)) for c in rgb)  # type: ignore[return-value]

    return dataclasses.replace(spk, skin=scale(spk.skin), lip=scale(spk.lip))
