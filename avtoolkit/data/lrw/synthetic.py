"""A tiny LRW-layout tree of real mp4 files, to try the LRW pipeline without the licensed data.

Each word draws its own visibly different mouth movement inside LRW's mouth box (rows
115..211, cols 79..175 of a 256x256 frame): an opening ellipse, a sliding bar, a blinking
block, a rotating line... with random position jitter, speed and noise per clip, so a model
must learn the motion, not one fixed image. Files are written with OpenCV's mp4v encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

_SIZE = 256
_MOUTH = (115, 79, 96)  # top, left, side of LRW's mouth box


def _draw(word_index: int, t: float, rng_offset: tuple[int, int], frame: np.ndarray) -> None:
    import cv2

    top, left, side = _MOUTH
    cy, cx = top + side // 2 + rng_offset[0], left + side // 2 + rng_offset[1]
    kind = word_index % 4
    if kind == 0:  # mouth opening and closing
        cv2.ellipse(frame, (cx, cy), (26, int(4 + 18 * abs(np.sin(np.pi * t)))), 0, 0, 360, (230, 230, 230), -1)
    elif kind == 1:  # a bar sliding left to right
        x = int(cx - 30 + 60 * t)
        cv2.rectangle(frame, (x - 5, cy - 22), (x + 5, cy + 22), (230, 230, 230), -1)
    elif kind == 2:  # two blocks blinking in turn
        on = int(t * 4) % 2
        cv2.rectangle(frame, (cx - 28 + 34 * on, cy - 12), (cx - 6 + 34 * on, cy + 12), (230, 230, 230), -1)
    else:  # a line rotating about the mouth centre
        angle = np.pi * t
        dx, dy = int(28 * np.cos(angle)), int(28 * np.sin(angle))
        cv2.line(frame, (cx - dx, cy - dy), (cx + dx, cy + dy), (230, 230, 230), 6)


def write_clip(path: str | Path, word_index: int, rng: np.random.Generator, frames: int = 29,
               duration: float = 0.4) -> Path:
    """Writes one synthetic clip (mp4) and its LRW-style ``.txt`` beside it."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (_SIZE, _SIZE))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4 files here ({path})")
    offset = (int(rng.integers(-6, 7)), int(rng.integers(-6, 7)))
    speed = float(rng.uniform(0.8, 1.2))
    background = int(rng.integers(40, 90))
    try:
        for k in range(frames):
            frame = np.full((_SIZE, _SIZE, 3), background, np.uint8)
            cv2.circle(frame, (128, 100), 80, (background + 40,) * 3, -1)  # a "face"
            _draw(word_index, (k / max(1, frames - 1) * speed) % 1.0, offset, frame)
            noise = rng.integers(-12, 13, (_SIZE, _SIZE, 1), dtype=np.int16)
            writer.write(np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    word = path.parent.parent.name
    path.with_suffix(".txt").write_text(
        f"Text:  {word}\nConf:  6\n\nDuration: {duration:.2f} seconds\n"
    )
    return path


def write_synthetic_lrw(root: str | Path, words: Sequence[str] = ("ABOUT", "BLACK", "CHILD", "DOING"),
                        clips: dict[str, int] | None = None, frames: int = 29, seed: int = 0) -> Path:
    """Writes ``root/WORD/{train,val,test}/WORD_00001.mp4`` (+ ``.txt``) for each word.

    Args:
        root: the folder to create (plays the role of ``lipread_mp4``).
        words: word folders; word ``i`` gets motion pattern ``i % 4``.
        clips: clips per split (default ``{"train": 12, "val": 3, "test": 4}``).
        frames: frames per clip (LRW has 29).
        seed: random seed of the per-clip jitter and noise.

    Returns:
        ``root``.
    """
    root = Path(root)
    clips = clips or {"train": 12, "val": 3, "test": 4}
    rng = np.random.default_rng(seed)
    number = 0
    for index, word in enumerate(words):
        for split, count in clips.items():
            for _ in range(count):
                number += 1
                write_clip(root / word / split / f"{word}_{number:05d}.mp4", index, rng, frames)
    return root
