"""Data-path benchmarks: preparing LRW-size clips and GRID clips, loading ROIs, log-mel features.

Everything runs in this one process with one worker (``build_roi_cache(..., workers=1)``, OpenCV
limited to one thread). "Per core" rates divide by the process's CPU time (all its threads:
FFmpeg may decode on more than one), so they do not flatter a multi-threaded decoder, and
single-threaded work keeps its rate when other processes share the machine (torch ops on
2 threads do not: waiting OpenMP threads spin); the wall-clock rate is reported beside them.
A machine's rate with ``workers=N`` is roughly N times the per-core rate.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

#: Where the real GRID clips live: the repository root's parent ``shared/data/grid``.
GRID_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "grid"


def _source_frames(size: int, frames: int, seed: int) -> list[np.ndarray]:
    """RGB ``size`` x ``size`` frame sequences: real faces from GRID when present.

    LRW frames are face-centred 256x256 crops of TV footage; the centre of a GRID frame
    (360x288, one speaker facing the camera) is the closest thing on disk, so decoding and
    the face detector see real content. Without GRID: moving gradients plus noise.
    """
    videos = sorted((GRID_DIR / "video").glob("*.mpg"))
    if videos:
        from avtoolkit.data.media import read_video

        sequences = []
        for path in videos:
            video, _ = read_video(path)
            top, left = (video.shape[1] - size) // 2, (video.shape[2] - size) // 2
            if top < 0 or left < 0:
                continue
            for start in range(0, len(video) - frames + 1, frames):
                sequences.append(video[start:start + frames, top:top + size, left:left + size])
        if sequences:
            return sequences
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    sequence = []
    for t in range(frames):
        base = 128 + 60 * np.sin((xx + 3 * t) / 17.0) * np.cos((yy - 2 * t) / 23.0)
        sequence.append(np.clip(base[..., None] + rng.normal(0, 8, (size, size, 3)), 0, 255).astype(np.uint8))
    return [np.stack(sequence)]


def write_lrw_tree(root: Path, clips: int, frames: int = 29, size: int = 256, seed: int = 0) -> Path:
    """Writes ``clips`` LRW-layout clips (H.264 mp4, ``size`` x ``size``, ``frames`` frames at 25 fps).

    With the demo corpus's LRW writer; crf 23 is x264's default, which these clips had before.

    Returns:
        The ``lipread_mp4`` folder.
    """
    from avtoolkit.demo.writer import write_lrw_clip

    sources = _source_frames(size, frames, seed)
    lrw = root / "lipread_mp4"
    for i in range(clips):
        word = f"WORD{i % 2}"
        write_lrw_clip(lrw / word / "test" / f"{word}_{i:05d}.mp4", sources[i % len(sources)], 0.30, crf=23)
    return lrw


def bench_prepare_lrw(workdir: Path, clips: int, method: str = "fixed") -> dict[str, Any]:
    """``build_roi_cache`` on one worker over freshly written LRW-size clips: clips/s per core."""
    import cv2

    from avtoolkit.datasets.lrw.prepare import build_roi_cache

    lrw = workdir / "lipread_mp4"
    if not lrw.exists():
        write_lrw_tree(workdir, clips)
    cv2.setNumThreads(1)  # what prepare's worker processes do
    cache = workdir / f"cache_{method}"
    start, cpu_start = time.perf_counter(), time.process_time()
    # sheets=0: the figure is the crop path alone, comparable with earlier runs
    report = build_roi_cache(lrw, cache, splits=("test",), method=method, workers=1, progress=False, sheets=0)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    if report.failed:
        raise RuntimeError(f"prepare failed on {len(report.failed)} clips: {report.failed[0]}")
    return {"clips": report.prepared, "clips_per_s_per_core": report.prepared / cpu_seconds,
            "clips_per_s_wall": report.prepared / seconds, "method": method}


def bench_load_rois(workdir: Path, cache: Path, repeats: int = 3) -> dict[str, Any]:
    """Reading prepared clips through the LRW dataset (decompress + centre crop + normalise)."""
    from avtoolkit.datasets.lrw import LRWClips, find_words, list_clips

    lrw = workdir / "lipread_mp4"
    clips = list_clips(lrw, "test", find_words(lrw))
    dataset = LRWClips(clips, cache, train=False)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        for i in range(len(dataset)):
            dataset[i]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    clips = len(dataset) * repeats
    return {"clips": clips, "clips_per_s_per_core": clips / cpu_seconds, "clips_per_s_wall": clips / seconds}


def bench_train_batches(workdir: Path, cache: Path, batch_size: int = 8, repeats: int = 3) -> dict[str, Any]:
    """One data-loader worker's work at the training batch size: read prepared clips, augment
    (random crop, flip, time mask), normalise and collate, split into the three stages.

    Compare ``clips_per_s_per_worker`` with the training step's clips/s: a worker slower than
    the step means training waits for its input (add ``data.workers``).
    """
    import numpy as np
    import torch

    from avtoolkit.datasets.lrw import LRWClips, find_words, list_clips
    from avtoolkit.data import video as T
    from avtoolkit.data.contract import collate
    from avtoolkit.datasets.lrw.prepare import cache_path

    lrw = workdir / "lipread_mp4"
    clips = list_clips(lrw, "test", find_words(lrw))
    dataset = LRWClips(clips, cache, train=True)
    order = [i % len(dataset) for i in range(max(batch_size, len(dataset)) * repeats)]
    cpu: dict[str, float] = {"read": 0.0, "augment": 0.0, "collate": 0.0}
    for start in range(0, len(order) - batch_size + 1, batch_size):
        items = []
        for i in order[start:start + batch_size]:
            t0 = time.process_time()
            with np.load(cache_path(cache, dataset.clips[i]), allow_pickle=False) as data:
                rois = torch.from_numpy(data["rois"])
            t1 = time.process_time()
            video = T.time_mask(T.normalise(T.horizontal_flip(T.random_crop(rois, dataset.crop_size),
                                                              dataset.flip)), dataset.time_mask)
            t2 = time.process_time()
            items.append({"video": video, "label": 0, "word_boundary": torch.ones(len(video)), "id": "", "text": ""})
            cpu["read"] += t1 - t0
            cpu["augment"] += t2 - t1
        t0 = time.process_time()
        collate(items)
        cpu["collate"] += time.process_time() - t0
    n = (len(order) // batch_size) * batch_size
    total = sum(cpu.values())
    return {"batch": batch_size, "clips": n, "clips_per_s_per_worker": n / total,
            **{f"{stage}_ms_per_clip": 1e3 * sec / n for stage, sec in cpu.items()}}


def bench_grid(max_clips: int | None = None) -> dict[str, Any]:
    """Decode + face-detector mouth crop of the real GRID clips (75 frames, 360x288 MPEG-1)."""
    import cv2

    from avtoolkit.roi import MouthCropper, mouth_rois

    videos = sorted((GRID_DIR / "video").glob("*.mpg"))[:max_clips]
    if not videos:
        return {"skipped": f"no GRID clips in {GRID_DIR / 'video'}"}
    cv2.setNumThreads(1)
    result: dict[str, Any] = {"clips": len(videos)}
    for method in ("face", "fixed"):
        cropper = MouthCropper(method=method)
        start, cpu_start = time.perf_counter(), time.process_time()
        frames = sum(len(mouth_rois(v, None, cropper)) for v in videos)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        result[method] = {"clips_per_s_per_core": len(videos) / cpu_seconds,
                          "frames_per_s_per_core": frames / cpu_seconds, "clips_per_s_wall": len(videos) / seconds}
    return result


def bench_log_mel(seconds_of_audio: float = 5.0, repeats: int = 20) -> dict[str, Any]:
    """Log-mel features: seconds of audio per second of compute (5 s utterances, batch 1)."""
    import torch

    from avtoolkit.data.features import LogMel

    log_mel = LogMel()
    wave = torch.randn(int(seconds_of_audio * log_mel.sample_rate))
    log_mel(wave)  # warm-up: window and filterbank creation
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        log_mel(wave)
    elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu_start
    result: dict[str, Any] = {"audio_s_per_s_per_core": seconds_of_audio * repeats / cpu_elapsed,
                              "audio_s_per_s_wall": seconds_of_audio * repeats / elapsed}
    grid = sorted((GRID_DIR / "video").glob("*.mpg"))
    if grid:
        from avtoolkit.data.media import read_audio

        cpu_start = time.process_time()
        total = sum(len(read_audio(p)) for p in grid) / 16000
        result["grid_audio_decode_s_per_s_per_core"] = total / (time.process_time() - cpu_start)
    return result


def bench_data(workdir: Path, quick: bool, log=print) -> dict[str, Any]:
    """All data benchmarks; each one that fails is recorded with its error, not fatal."""
    out: dict[str, Any] = {}
    clips = 8 if quick else 48
    jobs = [
        ("prepare_lrw_fixed", lambda: bench_prepare_lrw(workdir, clips, "fixed")),
        ("prepare_lrw_face", lambda: bench_prepare_lrw(workdir, clips, "face")),
        ("load_prepared_rois", lambda: bench_load_rois(workdir, workdir / "cache_fixed")),
        ("train_batches", lambda: bench_train_batches(workdir, workdir / "cache_fixed", 2 if quick else 8)),
        ("grid_decode_crop", lambda: bench_grid(2 if quick else None)),
        ("log_mel", lambda: bench_log_mel(repeats=5 if quick else 40)),
    ]
    for name, job in jobs:
        try:
            out[name] = job()
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"  {name}: {out[name]}")
    return out
