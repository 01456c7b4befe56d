"""Writes the demo corpus: an LRW-layout word set and a GRID-like sentence set.

Layout under ``out_dir``::

    corpus.json                       seed, size, speakers per split, counts
    lrw/WORD/{train,val,test}/WORD_00001.mp4   29 frames, 25 fps, 256x256, AAC audio
    lrw/WORD/{train,val,test}/WORD_00001.txt   LRW metadata with the Duration line
    lrw/speakers.txt                  "WORD/split/WORD_00001 s03" per clip
    sentences/{train,val,test}.txt    manifests: audio|video|transcript (relative paths)
    sentences/{split}/sNN_00001.wav   16 kHz mono speech
    sentences/{split}/sNN_00001.mp4   25 fps, 128x128 face video (same face-centred layout)

Every clip has its own random generator seeded by ``(seed, kind, split, index)``, so the
corpus does not depend on how many worker processes wrote it.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from avtoolkit.data.grid_grammar import GRID_SLOTS
from avtoolkit.demo.talking_face import render_face
from avtoolkit.demo.phones import FILLER_WORDS, LRW_WORDS
from avtoolkit.demo.speakers import Speaker, sample_speaker
from avtoolkit.demo.speech import SAMPLE_RATE, synthesize
from avtoolkit.demo.writer import VIDEO_FPS, write_lrw_clip, write_mp4, write_wav

SPLITS = ("train", "val", "test")
LRW_FRAMES = 29
# 128: frame widths that are not a multiple of 64 left stale bytes in the encoder's row
# padding, so the same frames encoded differently after a larger clip in the same process.
SENTENCE_FRAME_SIZE = 128
_SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS
_NOISE_FLOOR = 10 ** (-50 / 20)  # room noise at -50 dBFS so silence is not digital zero


@dataclass(frozen=True)
class DemoSize:
    """How much to generate.

    Attributes:
        lrw_words: vocabulary size of the LRW-layout set (first N of ``LRW_WORDS``).
        lrw_clips: clips per word in (train, val, test).
        sentences: sentences in (train, val, test).
        speakers: speakers in (train, val, test); no speaker is in two splits.
    """

    lrw_words: int
    lrw_clips: tuple[int, int, int]
    sentences: tuple[int, int, int]
    speakers: tuple[int, int, int]


SIZES: dict[str, DemoSize] = {
    "tiny": DemoSize(3, (4, 1, 2), (8, 2, 3), (4, 2, 2)),
    "small": DemoSize(10, (40, 5, 12), (600, 60, 120), (24, 4, 8)),
    "medium": DemoSize(20, (100, 10, 25), (2000, 150, 300), (48, 8, 12)),
}


def _speakers(seed: int, size: DemoSize) -> dict[str, list[Speaker]]:
    rng = np.random.default_rng([seed, 0])
    out: dict[str, list[Speaker]] = {}
    n = 0
    for split, count in zip(SPLITS, size.speakers):
        out[split] = []
        for _ in range(count):
            n += 1
            out[split].append(sample_speaker(f"s{n:02d}", rng))
    return out


def _clip_rng(seed: int, kind: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, kind, SPLITS.index(split), index])


def _lrw_clip(job: tuple) -> tuple[str, str]:
    """Writes one LRW-layout clip: the word centred in 29 frames of running speech."""
    out_dir, seed, word, split, k, index, speakers = job
    rng = _clip_rng(seed, 1, split, index)
    spk: Speaker = speakers[rng.integers(len(speakers))]
    left = list(rng.choice(FILLER_WORDS, size=3))
    right = list(rng.choice(FILLER_WORDS, size=3))
    utt = synthesize([*left, word, *right], spk, rng, lead=0.05, tail=0.05)
    _, start, end = utt.words[len(left)]
    clip_len = LRW_FRAMES / VIDEO_FPS
    # LRW centres the word in the clip; allow a frame of slack as real alignments have.
    clip_start = (start + end) / 2 - clip_len / 2 + rng.uniform(-0.02, 0.02)
    first = int(round(clip_start * SAMPLE_RATE))
    n_samples = LRW_FRAMES * _SAMPLES_PER_FRAME
    audio = np.zeros(n_samples, np.float32)
    src0, dst0 = max(first, 0), max(-first, 0)
    take = min(len(utt.audio) - src0, n_samples - dst0)
    audio[dst0 : dst0 + take] = utt.audio[src0 : src0 + take]
    audio += rng.normal(0, _NOISE_FLOOR, n_samples).astype(np.float32)
    times = clip_start + (np.arange(LRW_FRAMES) + 0.5) / VIDEO_FPS
    frames = render_face(utt.mouth_at(np.clip(times, 0, None)), spk, rng)
    stem = f"{word.upper()}_{k:05d}"
    path = Path(out_dir) / "lrw" / word.upper() / split / f"{stem}.mp4"
    write_lrw_clip(path, frames, end - start, audio, SAMPLE_RATE, crf=int(rng.integers(23, 30)))
    return f"{word.upper()}/{split}/{stem}", spk.id


def _sentence(job: tuple) -> tuple[str, str]:
    """Writes one GRID-like sentence as wav + silent mp4; returns its manifest line and speaker."""
    out_dir, seed, split, index, speakers = job
    rng = _clip_rng(seed, 2, split, index)
    spk: Speaker = speakers[rng.integers(len(speakers))]
    words = [str(rng.choice(slot)) for slot in GRID_SLOTS.values()]
    utt = synthesize(words, spk, rng, lead=float(rng.uniform(0.15, 0.35)), tail=float(rng.uniform(0.15, 0.35)))
    n_frames = len(utt.audio) // _SAMPLES_PER_FRAME
    audio = utt.audio[: n_frames * _SAMPLES_PER_FRAME]
    audio = audio + rng.normal(0, _NOISE_FLOOR, len(audio)).astype(np.float32)
    times = (np.arange(n_frames) + 0.5) / VIDEO_FPS
    frames = render_face(utt.mouth_at(times), spk, rng, size=SENTENCE_FRAME_SIZE)
    stem = f"{spk.id}_{index + 1:05d}"
    folder = Path(out_dir) / "sentences" / split
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / f"{stem}.wav", audio, SAMPLE_RATE)
    write_mp4(folder / f"{stem}.mp4", frames, crf=int(rng.integers(23, 30)))
    return f"{split}/{stem}.wav|{split}/{stem}.mp4|{' '.join(words)}", spk.id


def _run_many(fn, jobs: list[tuple]) -> list[tuple[str, str]]:
    return [fn(j) for j in jobs]


def generate_corpus(
    out_dir: str | os.PathLike[str],
    size: str = "small",
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> dict:
    """Generates the synthetic audio-visual demo corpus.

    Args:
        out_dir: folder to write (created; existing files of the same names are replaced).
        size: a key of :data:`SIZES` (``tiny``, ``small``, ``medium``).
        seed: corpus seed; the same seed and size give byte-identical files.
        workers: processes to use (default: all CPU cores); 1 writes in this process.
        progress: print a progress line per finished chunk.

    Returns:
        The summary also written to ``out_dir/corpus.json``: seed, size, speakers per
        split, LRW words, counts and generation time.

    Raises:
        ValueError: an unknown ``size``.

    Examples:
        >>> import tempfile
        >>> summary = generate_corpus(tempfile.mkdtemp(), size="tiny", workers=1)
        >>> summary["counts"]["lrw"], summary["counts"]["sentences"]
        ({'train': 12, 'val': 3, 'test': 6}, {'train': 8, 'val': 2, 'test': 3})
    """
    if size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    spec = SIZES[size]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    speakers = _speakers(seed, spec)
    words = LRW_WORDS[: spec.lrw_words]

    lrw_jobs: list[tuple] = []
    for split, per_word in zip(SPLITS, spec.lrw_clips):
        for w_i, word in enumerate(words):
            for k in range(per_word):
                index = w_i * per_word + k
                lrw_jobs.append((str(out), seed, word, split, k + 1, index, speakers[split]))
    sentence_jobs = [
        (str(out), seed, split, i, speakers[split]) for split, n in zip(SPLITS, spec.sentences) for i in range(n)
    ]
    tasks = [(_lrw_clip, lrw_jobs[i : i + 16]) for i in range(0, len(lrw_jobs), 16)]
    tasks += [(_sentence, sentence_jobs[i : i + 16]) for i in range(0, len(sentence_jobs), 16)]

    workers = workers or os.cpu_count() or 1
    if workers == 1:
        results = [_run_many(fn, chunk) for fn, chunk in tasks]
    else:
        # spawn: the caller may have torch (and its thread pools) loaded; forking that is unsafe.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run_many, fn, chunk) for fn, chunk in tasks]
            results = []
            for i, fut in enumerate(futures):
                results.append(fut.result())
                if progress:
                    print(f"\rdemo corpus: {i + 1}/{len(futures)} chunks", end="", flush=True)
            if progress:
                print()
    n_lrw_chunks = (len(lrw_jobs) + 15) // 16
    lrw_rows = [row for chunk in results[:n_lrw_chunks] for row in chunk]
    sentence_rows = [row for chunk in results[n_lrw_chunks:] for row in chunk]

    if lrw_rows:
        (out / "lrw" / "speakers.txt").write_text("".join(f"{clip} {spk}\n" for clip, spk in lrw_rows), encoding="utf-8")
    offset = 0
    for split, n in zip(SPLITS, spec.sentences):
        lines = [line for line, _ in sentence_rows[offset : offset + n]]
        offset += n
        (out / "sentences").mkdir(parents=True, exist_ok=True)
        (out / "sentences" / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")

    summary = {
        "generator": "avtoolkit.demo",
        "seed": seed,
        "size": size,
        "spec": asdict(spec),
        "sample_rate": SAMPLE_RATE,
        "fps": VIDEO_FPS,
        "lrw_words": [w.upper() for w in words],
        "speakers": {split: [s.id for s in spks] for split, spks in speakers.items()},
        "speaker_params": {s.id: s.to_dict() for spks in speakers.values() for s in spks},
        "counts": {
            "lrw": {split: n * len(words) for split, n in zip(SPLITS, spec.lrw_clips)},
            "sentences": dict(zip(SPLITS, spec.sentences)),
        },
    }
    (out / "corpus.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary
