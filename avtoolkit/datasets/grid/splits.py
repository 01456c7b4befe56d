"""Deterministic GRID splits: by hash of the clip id, by held-out speakers, or LipNet's "overlapped".

* ``hash_split``: each clip's split depends only on its own id (a SHA-1 of ``speaker/id``
  mapped to [0, 1) and cut at the cumulative fractions), so adding clips or speakers never
  moves a clip that was already placed, and every machine agrees.
* ``unseen_speakers``: LipNet's (Assael et al., 2016) speaker-independent protocol: s1, s2, s20
  and s22 are the test speakers, all others train.
* ``overlapped``: LipNet's other protocol: of every speaker, 255 randomly chosen sentences are
  held out for test (seeded, per speaker), the rest train.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Iterable, Mapping, Sequence

#: LipNet's held-out speakers for the "unseen speakers" protocol.
UNSEEN_SPEAKERS = ("s1", "s2", "s20", "s22")
#: LipNet's "overlapped speakers" protocol: sentences held out per speaker.
OVERLAPPED_TEST_PER_SPEAKER = 255
PROTOCOLS = ("hash", "unseen_speakers", "overlapped")


def hash_unit(key: str) -> float:
    """A stable number in [0, 1) from a string (SHA-1, not Python's per-process ``hash``)."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big") / 2.0 ** 64


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Validates split fractions (non-negative, summing to 1) and returns them as floats.

    Raises:
        ValueError: a negative fraction or a sum other than 1.
    """
    out = {k: float(v) for k, v in fractions.items()}
    if any(v < 0 for v in out.values()) or abs(sum(out.values()) - 1.0) > 1e-6:
        raise ValueError(f"data.split_fractions must be non-negative and sum to 1, got {dict(fractions)}")
    return out


def hash_split(key: str, fractions: Mapping[str, float]) -> str:
    """The split of one clip, from its key alone.

    Args:
        key: a stable clip key (``s1/bbaf2n``).
        fractions: split name -> fraction, in the order the [0, 1) interval is cut.

    Examples:
        >>> hash_split("s1/bbaf2n", {"train": 0.8, "val": 0.1, "test": 0.1}) in {"train", "val", "test"}
        True
        >>> hash_split("s1/bbaf2n", {"train": 1.0, "test": 0.0})
        'train'
    """
    u, edge = hash_unit(key), 0.0
    names = list(fractions)
    for name in names:
        edge += float(fractions[name])
        if u < edge:
            return name
    return names[-1]  # rounding: u within 1e-16 of 1


def assign_splits(keys: Iterable[tuple[str, str]], protocol: str = "hash",
                  fractions: Mapping[str, float] | None = None,
                  test_speakers: Sequence[str] = UNSEEN_SPEAKERS,
                  test_per_speaker: int = OVERLAPPED_TEST_PER_SPEAKER, seed: int = 0) -> dict[str, str]:
    """Splits clips given as ``(speaker, clip_id)`` pairs; returns ``"speaker/id" -> split``.

    Args:
        keys: the clips.
        protocol: ``hash``, ``unseen_speakers`` or ``overlapped`` (module docstring).
        fractions: ``hash``: split -> fraction (default 0.8/0.1/0.1 train/val/test). Other
            protocols carve ``val`` out of their training clips by hash with ``fractions["val"]``
            (default 0.05) so validation never touches test.
        test_speakers: ``unseen_speakers``: the held-out speakers.
        test_per_speaker: ``overlapped``: sentences per speaker held out for test.
        seed: ``overlapped``: seed of the per-speaker draw.

    Raises:
        ValueError: an unknown protocol or bad fractions.

    Examples:
        >>> s = assign_splits([("s1", "a"), ("s3", "b")], "unseen_speakers", {"val": 0.0, "train": 1.0})
        >>> s["s1/a"], s["s3/b"]
        ('test', 'train')
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"data.split: '{protocol}' is not one of {', '.join(PROTOCOLS)}")
    keys = sorted(set(keys))
    if protocol == "hash":
        fr = check_fractions(fractions or {"train": 0.8, "val": 0.1, "test": 0.1})
        return {f"{s}/{i}": hash_split(f"{s}/{i}", fr) for s, i in keys}
    val = float((fractions or {}).get("val", 0.05))
    train_or_val = {"train": 1.0 - val, "val": val}
    out: dict[str, str] = {}
    if protocol == "unseen_speakers":
        held = set(test_speakers)
        for s, i in keys:
            out[f"{s}/{i}"] = "test" if s in held else hash_split(f"{s}/{i}", train_or_val)
        return out
    by_speaker: dict[str, list[str]] = {}
    for s, i in keys:
        by_speaker.setdefault(s, []).append(i)
    for s, ids in by_speaker.items():
        # A string seed: random.Random hashes it with SHA-512, stable across processes.
        test = set(random.Random(f"{seed}|{s}").sample(ids, min(test_per_speaker, len(ids))))
        for i in ids:
            out[f"{s}/{i}"] = "test" if i in test else hash_split(f"{s}/{i}", train_or_val)
    return out


def split_clips(clips: Sequence[Any], split_args: Mapping[str, Any], max_clips: Mapping[str, int] | None = None
                ) -> dict[str, list[Any]]:
    """Clips (with ``speaker``, ``id`` and ``key``) by split: :func:`assign_splits` with ``split_args``
    (``protocol``, ``fractions``, ``test_speakers``, ``test_per_speaker``, ``seed``), then at most
    ``max_clips[split]`` of each split, the first by id hash.

    The one place GRID's splits are made: the audio-visual dataset (``grid``) and the text one of its
    language models (``grid_text``) both call it, so an LM never trains on a test sentence.
    """
    where = assign_splits([(c.speaker, c.id) for c in clips], **split_args)
    out: dict[str, list[Any]] = {s: [] for s in ("train", "val", "test")}
    for clip in clips:
        out[where[clip.key]].append(clip)
    for split, limit in (max_clips or {}).items():
        # The first N in hash order, not id order: sorted GRID ids group by command and
        # colour, so the first 300 would all be "bin ..." or "lay ..." sentences.
        out[split] = sorted(sorted(out[split], key=lambda c: hash_unit(c.key))[: int(limit)], key=lambda c: c.key)
    return out
