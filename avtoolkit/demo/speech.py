"""Formant speech synthesis, vectorised with numpy, and the mouth track that goes with it.

Each phone becomes one or more *segments* of constant targets (formants, voicing,
frication, aspiration, viseme). Targets are laid out on a 250 Hz control grid
(:data:`CONTROL_RATE`, one value per 4 ms) and smoothed, which gives the formant
transitions and the lip coarticulation. The sound is then made in the short-time
Fourier domain: a glottal impulse train and white noise are framed, multiplied frame by
frame by the spectral envelope their targets give (formant resonances with a spectral
tilt, or a frication band) and overlap-added back. That is a time-varying filter without a
per-sample Python loop, so a second of speech takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avtoolkit.demo.phones import PHONES, VISEMES, pronounce
from avtoolkit.demo.speakers import Speaker

SAMPLE_RATE = 16_000
_HOP = 64
_NFFT = 4 * _HOP  # hop = n_fft / 4 keeps the overlap-add below to four shifted sums
#: Control values per second (one per STFT hop).
CONTROL_RATE = SAMPLE_RATE // _HOP
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE)
_WINDOW = np.hanning(_NFFT + 1)[:-1]  # periodic Hann
# Energy of unit-amplitude voicing and unit-std noise per frame differ; this std makes
# noise at amplitude 1 as loud as voicing at amplitude 1 (see _voicing_source).
_NOISE_STD = float(np.sqrt(0.72 / np.sum(_WINDOW**2)))
_VISEME_KEYS = ("open", "width", "round", "teeth", "tongue")
#: Column order of :attr:`Utterance.mouth`.
MOUTH_PARAMS: tuple[str, ...] = _VISEME_KEYS


@dataclass
class Utterance:
    """A synthesised utterance.

    Attributes:
        audio: float32 ``[samples]`` at :data:`SAMPLE_RATE`, peak about 0.5.
        mouth: float32 ``[control_frames, 5]`` lip parameters (:data:`MOUTH_PARAMS`) at
            :data:`CONTROL_RATE`, aligned with ``audio``.
        words: ``(word, start_s, end_s)`` for each spoken word.
    """

    audio: np.ndarray
    mouth: np.ndarray
    words: list[tuple[str, float, float]]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def mouth_at(self, times: np.ndarray) -> np.ndarray:
        """Lip parameters ``[len(times), 5]`` at ``times`` (seconds)."""
        idx = np.clip(np.round(np.asarray(times) * CONTROL_RATE).astype(int), 0, len(self.mouth) - 1)
        return self.mouth[idx]


# One segment: duration (s), F1-F3, voicing, frication amplitude, band low/high,
# aspiration amplitude, then the 5 viseme values.
_SEG_LEN = 1 + 3 + 1 + 3 + 1 + 5


def _viseme(name: str) -> list[float]:
    v = VISEMES[name]
    return [v.open, v.width, v.round, v.teeth, v.tongue]


def _silence(duration: float) -> list[float]:
    return [duration, 500.0, 1500.0, 2500.0, 0.0, 0.0, 1000.0, 2000.0, 0.0, *_viseme("rest")]


def _phone_segments(phone: str, nxt: str | None, duration: float) -> list[list[float]]:
    """Segments of one phone; stops and /h/ borrow the next phone's formants."""
    p = PHONES[phone]
    f1, f2, f3 = p.formants
    nf = PHONES[nxt].formants if nxt else (500.0, 1500.0, 2500.0)
    vis = _viseme(p.viseme)
    nvis = _viseme(PHONES[nxt].viseme) if nxt else _viseme("rest")
    lo, hi = p.frication or (1000.0, 2000.0)
    if p.kind == "vowel":
        return [[duration, f1, f2, f3, 1.0, 0.0, lo, hi, 0.0, *vis]]
    if p.kind == "approximant":
        return [[duration, f1, f2, f3, 0.6, 0.0, lo, hi, 0.0, *vis]]
    if p.kind == "nasal":
        return [[duration, f1, f2, f3, 0.3, 0.0, lo, hi, 0.0, *vis]]
    if p.kind == "fricative":
        return [[duration, f1, f2, f3, 0.3 if p.voiced else 0.0, p.noise_gain, lo, hi, 0.0, *vis]]
    if p.kind == "aspirate":
        return [[duration, *nf, 0.0, 0.0, lo, hi, 0.35, *nvis]]
    # stop: closure (a low voice bar when voiced), release burst, then aspiration
    # (voiceless) or frication (affricates)
    b_lo, b_hi = p.burst or (1000.0, 4000.0)
    closure = duration * 0.7
    segs = [
        [closure, 200.0, 800.0, 2300.0, 0.08 if p.voiced else 0.0, 0.0, lo, hi, 0.0, *vis],
        [0.012, *nf, 0.0, 0.9 if not p.voiced else 0.5, b_lo, b_hi, 0.0, *vis],
    ]
    if p.frication:
        segs.append([0.06, f1, f2, f3, 0.25 if p.voiced else 0.0, p.noise_gain, lo, hi, 0.0, *vis])
    elif not p.voiced:
        segs.append([0.035, *nf, 0.0, 0.0, lo, hi, 0.3, *nvis])
    return segs


def plan_segments(
    words: list[str],
    speaker: Speaker,
    rng: np.random.Generator,
    lead: float = 0.15,
    tail: float = 0.15,
) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Segment table ``[n, 14]`` for ``words`` and each word's (start, end) in seconds.

    Durations vary per phone (log-normal, +-15%), lengthen on the last phone of a word and
    are scaled by the speaker's rate; short pauses sometimes separate words.
    """
    segs: list[list[float]] = [_silence(lead)]
    spans: list[tuple[str, float, float]] = []
    t = lead
    for w_i, word in enumerate(words):
        phones = pronounce(word)
        start = t
        for i, ph in enumerate(phones):
            nxt = phones[i + 1] if i + 1 < len(phones) else None
            dur = PHONES[ph].duration * speaker.rate * float(rng.lognormal(0.0, 0.15))
            if i == len(phones) - 1:
                dur *= 1.25
            for seg in _phone_segments(ph, nxt, dur):
                segs.append(seg)
                t += seg[0]
        spans.append((word, start, t))
        if w_i < len(words) - 1 and rng.random() < 0.15:
            pause = float(rng.uniform(0.04, 0.12))
            segs.append(_silence(pause))
            t += pause
    segs.append(_silence(tail))
    return np.asarray(segs, dtype=np.float64), spans


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-window moving average along axis 0 (edges held)."""
    if width <= 1:
        return x
    k = np.hanning(width + 2)[1:-1]
    k /= k.sum()
    pad = width // 2
    xp = np.pad(x, ((pad, width - 1 - pad), (0, 0)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(xp, width, axis=0)  # [T, C, width]
    return win @ k


def _resonance(f: np.ndarray, centre: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Magnitude of a second-order resonator (unit gain at 0 Hz), frames x freqs."""
    c, b = centre[:, None], bw[:, None] / 2
    return (c**2 + b**2) / np.sqrt(((f - c) ** 2 + b**2) * ((f + c) ** 2 + b**2))


def _band(f: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Smooth band-pass shape between ``lo`` and ``hi`` Hz, frames x freqs."""
    return 1 / (1 + np.exp(-(f - lo[:, None]) / 250.0)) / (1 + np.exp((f - hi[:, None]) / 500.0))


def _unit_power(h: np.ndarray) -> np.ndarray:
    return h / np.sqrt(np.mean(h**2, axis=1, keepdims=True) + 1e-12)


def _frames(x: np.ndarray, n_frames: int) -> np.ndarray:
    xp = np.pad(x, (_NFFT // 2, _NFFT // 2))
    return np.lib.stride_tricks.sliding_window_view(xp, _NFFT)[: n_frames * _HOP : _HOP] * _WINDOW


def _overlap_add(frames: np.ndarray, n_samples: int) -> np.ndarray:
    n = len(frames)
    chunks = frames.reshape(n, 4, _HOP)
    out = np.zeros((n + 3, _HOP))
    for k in range(4):
        out[k : k + n] += chunks[:, k]
    return out.reshape(-1)[_NFFT // 2 : _NFFT // 2 + n_samples]


def synthesize(words: list[str], speaker: Speaker, rng: np.random.Generator, lead: float = 0.15, tail: float = 0.15) -> Utterance:
    """Speaks ``words`` with ``speaker``'s voice and returns audio plus the lip track.

    Args:
        words: words from :data:`avtoolkit.demo.phones.LEXICON`.
        speaker: voice and face parameters.
        rng: the only source of randomness (same state, same utterance).
        lead: silence before the first word, seconds.
        tail: silence after the last word, seconds.

    Returns:
        The :class:`Utterance`.

    Examples:
        >>> from avtoolkit.demo.speakers import sample_speaker
        >>> spk = sample_speaker("s1", np.random.default_rng(1))
        >>> utt = synthesize(["bin", "blue"], spk, np.random.default_rng(2))
        >>> utt.audio.dtype.name, [w for w, _, _ in utt.words]
        ('float32', ['bin', 'blue'])
    """
    segs, spans = plan_segments(words, speaker, rng, lead, tail)
    bounds = np.round(np.concatenate([[0.0], np.cumsum(segs[:, 0])]) * CONTROL_RATE).astype(int)
    counts = np.maximum(np.diff(bounds), 1)
    track = np.repeat(segs[:, 1:], counts, axis=0)  # [T, 13]
    n_frames = len(track)
    n_samples = n_frames * _HOP

    utt_scale = speaker.formant_scale * float(rng.uniform(0.98, 1.02))
    formants = _smooth(track[:, 0:3], 11) * utt_scale  # ~44 ms transitions
    amps = _smooth(track[:, [3, 4, 7]], 3)  # voicing, frication, aspiration: fast onsets
    band = track[:, 5:7]
    mouth = _smooth(track[:, 8:13], 13).astype(np.float32)  # lips move slower than formants

    # Pitch: declination over the utterance, slow wander, per-period jitter.
    t = np.arange(n_frames) / CONTROL_RATE
    wander = _smooth(rng.normal(0, 1, (n_frames, 1)), 61)[:, 0]
    wander *= 0.06 / (wander.std() + 1e-9)  # about +-6% (a semitone), in log-pitch
    f0 = np.clip(speaker.f0 * (1.08 - 0.16 * t / t[-1]) * np.exp(wander), 60.0, 400.0)
    f0_samples = np.interp(np.arange(n_samples) / SAMPLE_RATE, t, f0)
    f0_samples *= np.exp(0.01 * rng.standard_normal(n_samples))
    phase = np.cumsum(f0_samples / SAMPLE_RATE)
    pulses = np.diff(np.floor(phase), prepend=0.0) > 0
    # Scale so voicing energy per frame does not depend on pitch (more pulses when higher).
    voicing = pulses * np.sqrt(120.0 / f0_samples) * (1 + 0.05 * rng.standard_normal(n_samples))
    noise = rng.standard_normal(n_samples) * _NOISE_STD

    bw = np.array([60.0, 90.0, 150.0]) * speaker.formant_scale
    formant_env = np.ones((n_frames, len(_FREQS)))
    for k in range(3):
        formant_env *= _resonance(_FREQS, formants[:, k], np.full(n_frames, bw[k]))
    tilt = (np.maximum(_FREQS, 100.0) / 100.0) ** (speaker.tilt / 6.02)
    formant_env = _unit_power(formant_env * tilt)
    fric_env = _unit_power(_band(_FREQS, band[:, 0], band[:, 1]))

    voice_amp = amps[:, 0:1]
    h_voice = voice_amp * formant_env
    h_noise = amps[:, 1:2] * fric_env + (amps[:, 2:3] + speaker.breathiness * voice_amp) * formant_env
    spec = np.fft.rfft(_frames(voicing, n_frames)) * h_voice + np.fft.rfft(_frames(noise, n_frames)) * h_noise
    out_frames = np.fft.irfft(spec, _NFFT) * _WINDOW / 1.5  # Hann^2 at hop n/4 sums to 1.5
    audio = _overlap_add(out_frames, n_samples)
    peak = np.percentile(np.abs(audio), 99.9) + 1e-9
    audio = audio * (0.45 / peak) * float(rng.uniform(0.7, 1.0))
    return Utterance(np.clip(audio, -1, 1).astype(np.float32), mouth, spans)
