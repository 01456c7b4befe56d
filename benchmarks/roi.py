"""Mouth-ROI benchmark: Haar face box vs landmarks vs landmarks + alignment on GRID clips.

``python benchmarks/roi.py [--clips 10] [--out benchmarks/results/roi.json]`` (needs the
``landmarks`` extra and ``../shared/data/grid_s1``).

Reference ("ground truth") lip positions: the face mesh's 68-point landmarks on the clean
clip. Each robustness condition transforms the frames by a known geometric map, so the
reference lips move by the same map; the detector then runs on the transformed frames. The
reference therefore measures the crop against the detector's own clean-frame answer: it
checks robustness, not the face mesh's absolute accuracy.

Figures, per condition and method (all in percent of the crop width unless stated):

``found``
    frames with landmarks (``haar``: frames within a clip where a face box exists) among
    the frames that contain a face (blanked frames excluded).
``centre_p50`` / ``centre_p95``
    distance from the crop centre to the reference mouth centre (mean of points 48-67).
``scale_spread``
    the largest ``max/min - 1`` of the crop width (in frame pixels) within a clip.
``jitter``
    mean frame-to-frame motion of the crop centre in the frame (GRID speakers hold their
    heads nearly still, so this is the crop's shake).
``failed``
    clips that raised an error (no face, too few landmarks).

Speed: one process, OpenCV and LiteRT on one thread, CPU time (all threads) per frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GRID_S1 = ROOT.parent / "shared" / "data" / "grid_s1" / "s1"
CROP = (96, 96)


# ------------------------------------------------------------------ conditions
def _canvas(frames: np.ndarray, scale: float, shape: tuple[int, int], at: tuple[float, float]):
    """Frames scaled by ``scale`` and pasted with their top-left at ``at`` on a gray canvas."""
    import cv2

    m = np.array([[scale, 0, at[0]], [0, scale, at[1]]], dtype=np.float64)
    out = np.stack([cv2.warpAffine(f, m, (shape[1], shape[0]), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=110) for f in frames])
    return out, m


def _rotate(frames: np.ndarray, degrees: float):
    import cv2

    h, w = frames.shape[1:]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return np.stack([cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REPLICATE) for f in frames]), m


def _jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    return np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1],
                                  cv2.IMREAD_GRAYSCALE) for f in frames])


def _second_face(frames: np.ndarray, other: np.ndarray):
    """The speaker on the left of a 760x288 frame; another clip (0.8x, mirrored) on the right.

    GRID s1 holds one speaker, so the second face is the same person in another clip: the
    harder case for a tracker, which cannot tell them apart by appearance.
    """
    import cv2

    h, w = frames.shape[1:]
    out = np.full((len(frames), h, 2 * w + 40), 110, np.uint8)
    out[:, :, :w] = frames
    small = np.stack([cv2.resize(f[:, ::-1], (int(w * 0.8), int(h * 0.8)), interpolation=cv2.INTER_AREA)
                      for f in other[: len(frames)]])
    out[:len(small), 40:40 + small.shape[1], w + 40: w + 40 + small.shape[2]] = small
    return out, np.array([[1.0, 0, 0], [0, 1.0, 0]])


def conditions(frames: np.ndarray, other: np.ndarray, rng: np.random.Generator):
    """(name, frames, 2x3 map from clean to transformed pixels, mask of frames with a face)."""
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    all_faces = np.ones(len(frames), bool)
    yield "clean", frames, identity, all_faces
    for deg in (15, 30):
        f, m = _rotate(frames, deg)
        yield f"rotate {deg} deg", f, m, all_faces
    for scale in (0.4, 0.7, 2.0):
        f, m = _canvas(frames, scale, (720, 1280), (640 - 180 * scale, 360 - 144 * scale))
        yield f"{scale:g}x in 1280x720", f, m, all_faces
    f, m = _canvas(frames, 1.0, (720, 1280), (900, 400))
    yield "off-centre (corner of 1280x720)", f, m, all_faces
    f, m = _second_face(frames, other)
    yield "second face", f, m, all_faces
    dark = np.clip(frames.astype(np.float32) * 0.3, 0, 255).astype(np.uint8)
    yield "dark (x0.3)", dark, identity, all_faces
    yield "JPEG quality 8", _jpeg(frames, 8), identity, all_faces
    blank = np.zeros(len(frames), bool)
    blank[rng.choice(len(frames), len(frames) // 10, replace=False)] = True
    f = frames.copy()
    f[blank] = 0
    yield "10% blank frames", f, identity, ~blank


# ------------------------------------------------------------------ methods
def crop_geometry(method: str, frames: np.ndarray):
    """Per-frame crop centre ``[T, 2]``, width ``[T]`` (frame px) and landmarks found ``[T]``."""
    from avtoolkit.roi.crop import MouthCropper
    from avtoolkit.roi.aligned_crops import aligned_crops
    from avtoolkit.roi.detector import detect_landmarks

    if method == "haar":
        boxes = MouthCropper(size=CROP, method="face").boxes(frames, source="clip")
        return boxes[:, :2], boxes[:, 2], np.ones(len(frames), bool), None
    points = detect_landmarks(frames)
    found = ~np.isnan(points).any(axis=(1, 2))
    if method == "landmarks":
        boxes = MouthCropper(size=CROP, method="landmarks", align=False).boxes(frames, points, source="clip")
        return boxes[:, :2], boxes[:, 2], found, None
    result = aligned_crops(frames, points, CROP, source="clip")
    boxes = result.boxes()
    return boxes[:, :2], boxes[:, 2], found, result.matrices


def score(method, frames, reference_mouth, has_face):
    """The figures of one clip under one condition (see the module docstring)."""
    try:
        centre, width, found, matrices = crop_geometry(method, frames)
    except Exception as exc:  # noqa: BLE001 - a failed clip is a result here
        return {"failed": 1, "error": str(exc)[:120]}
    if matrices is not None:  # aligned: measure in crop pixels, where rotation is undone
        lin, shift = matrices[:, :, :2], matrices[:, :, 2]
        mouth_crop = np.einsum("tij,tj->ti", lin, reference_mouth) + shift
        offset = (mouth_crop - np.array([CROP[1] / 2, CROP[0] / 2])) / CROP[1]
    else:
        offset = (reference_mouth - centre) / width[:, None]
    offset = offset[has_face]
    dist = 100 * np.linalg.norm(offset, axis=1)
    return {
        "failed": 0,
        "found": float(found[has_face].mean()),
        "centre": dist.tolist(),
        "scale_spread": float(width[has_face].max() / width[has_face].min() - 1) * 100,
        # The crop's own shake: GRID heads are nearly still, so crop-centre motion between
        # frames is noise (the lips' own motion is not subtracted: that would hide a crop
        # that follows the lips as they open).
        "jitter": float(100 * (np.linalg.norm(np.diff(centre[has_face], axis=0), axis=1)
                               / width[has_face][1:]).mean()),
    }


def speed(clips: list[Path]) -> dict[str, float]:
    """CPU ms per 360x288 frame: decoding, landmarks, aligned crop; LRW-size clips per second."""
    import cv2

    from avtoolkit.data.media import read_video
    from avtoolkit.roi.aligned_crops import aligned_crops
    from avtoolkit.roi.detector import detect_landmarks

    cv2.setNumThreads(1)
    detect_landmarks(np.zeros((1, 64, 64), np.uint8))  # load the models outside the timing
    decode = detect = crop = 0.0
    frames_total = 0
    for clip in clips:
        t0 = time.process_time()
        gray, _ = read_video(clip, color="gray")
        t1 = time.process_time()
        points = detect_landmarks(gray)
        t2 = time.process_time()
        aligned_crops(gray, points, CROP, source=clip)
        t3 = time.process_time()
        decode, detect, crop = decode + t1 - t0, detect + t2 - t1, crop + t3 - t2
        frames_total += len(gray)
    # LRW-size clips: 29 frames of a 256x256 crop of the same footage, written as H.264 files
    # and prepared as `method: landmarks` prepares them (decode, detect, align, crop).
    import tempfile

    import av

    from avtoolkit.roi.crop import MouthCropper

    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, clip in enumerate(clips):
            rgb, _ = read_video(clip)
            path = Path(tmp) / f"lrw{k}.mp4"
            with av.open(str(path), "w") as out:
                stream = out.add_stream("h264", rate=25)
                stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
                for frame in rgb[:29, 16:272, 52:308]:
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
                out.mux(stream.encode())
            paths.append(path)
        cropper = MouthCropper(size=CROP, method="landmarks")
        t0 = time.process_time()
        for path in paths:
            cropper.crop(read_video(path, color="gray")[0], source=path)
        lrw_s = (time.process_time() - t0) / len(paths)
    per = {k: 1000 * v / frames_total for k, v in (("decode", decode), ("landmarks", detect), ("crop", crop))}
    per["total"] = sum(per.values())
    return {**{f"{k}_ms_per_frame": round(v, 2) for k, v in per.items()},
            "frames_per_s_per_core": round(1000 / per["total"], 1),
            "lrw_size_clips_per_s_per_core": round(1 / lrw_s, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--methods", default="haar,landmarks,aligned")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "roi.json"))
    args = parser.parse_args(argv)
    import cv2

    from avtoolkit.data.media import read_video
    from avtoolkit.roi.detector import detect_landmarks

    cv2.setNumThreads(1)
    clips = sorted(GRID_S1.glob("*.mp4"))[:: max(1, 900 // args.clips)][: args.clips]
    if not clips:
        print(f"no GRID clips at {GRID_S1}", file=sys.stderr)
        return 1
    rng = np.random.default_rng(0)
    methods = args.methods.split(",")
    results: dict[str, dict[str, list]] = {}
    for i, clip in enumerate(clips):
        gray, _ = read_video(clip, color="gray")
        other, _ = read_video(clips[(i + 1) % len(clips)], color="gray")
        clean = detect_landmarks(gray)
        from avtoolkit.roi.mean_face import fill_missing

        mouth = fill_missing(clean)[:, 48:68].mean(axis=1)
        for name, frames, m, has_face in conditions(gray, other, rng):
            ref = mouth @ m[:, :2].T + m[:, 2]
            for method in methods:
                r = score(method, np.ascontiguousarray(frames), ref, has_face)
                results.setdefault(name, {}).setdefault(method, []).append(r)
        print(f"clip {i + 1}/{len(clips)} {clip.name}", file=sys.stderr)
    table = {}
    for name, per_method in results.items():
        for method, rs in per_method.items():
            ok = [r for r in rs if not r["failed"]]
            centre = np.concatenate([r["centre"] for r in ok]) if ok else np.array([np.nan])
            table[f"{name} | {method}"] = {
                "found_%": round(100 * float(np.mean([r["found"] for r in ok])), 2) if ok else None,
                "centre_p50_%": round(float(np.median(centre)), 2),
                "centre_p95_%": round(float(np.percentile(centre, 95)), 2),
                "scale_spread_max_%": round(max(r["scale_spread"] for r in ok), 2) if ok else None,
                "jitter_%": round(float(np.mean([r["jitter"] for r in ok])), 3) if ok else None,
                "failed": f"{sum(r['failed'] for r in rs)}/{len(rs)}",
                "errors": sorted({r["error"] for r in rs if r["failed"]})[:2],
            }
    out = {"clips": [c.name for c in clips], "table": table, "speed": speed(clips)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("| condition | method | found % | centre p50 % | centre p95 % | scale spread % | jitter % | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for key, row in table.items():
        cond, method = key.split(" | ")
        print(f"| {cond} | {method} | {row['found_%']} | {row['centre_p50_%']} | {row['centre_p95_%']} | "
              f"{row['scale_spread_max_%']} | {row['jitter_%']} | {row['failed']} |")
    print(json.dumps(out["speed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
