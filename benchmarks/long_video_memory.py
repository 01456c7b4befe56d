"""Peak memory of ``transcribe_recording`` (``avtoolkit transcribe MEDIA``) against video length.

Makes a synthetic gray video (PyAV, mpeg4, 25 fps) per length, then transcribes each in a fresh
process with a tiny video-only CTC model and prints the peak RSS above the process with the
model loaded. The landmark tracker is replaced by a constant face, so only the frame pipeline
is measured (the tracker holds one frame at a time) and the run takes seconds, not minutes.

Examples:
    nice -n 19 python benchmarks/long_video_memory.py --seconds 60 300 --size 360x288
    # the same against another checkout (the path before streaming):
    PYTHONPATH=/path/to/old/checkout python benchmarks/long_video_memory.py --seconds 60 300
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_video(path: Path, seconds: int, width: int, height: int) -> None:
    """A moving gray ramp, encoded a frame at a time."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ramp = np.tile((np.arange(width) % 256).astype(np.uint8), (height, 1))
        for t in range(seconds * 25):
            gray = np.roll(ramp, t, axis=1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.repeat(gray[..., None], 3, -1), format="rgb24")))
        container.mux(stream.encode())


def measure(video: Path, folder: Path) -> None:
    """Transcribes ``video`` in this process and prints its peak RSS."""
    import torch

    import avtoolkit.roi.detector as detector
    from avtoolkit import build_model
    from avtoolkit.data.text import CHARACTERS
    from avtoolkit.inference.long_video import transcribe_recording
    from avtoolkit.inference.transcriber import Transcriber

    face = np.tile(np.array([[60.0, 50.0]]), (68, 1))
    detector.detect_landmarks = lambda frames: np.stack([face for _ in frames])
    model_cfg = {"encoders": {"video": {"name": "video_cnn", "channels": [8, 8, 8], "hidden_dim": 32, "dropout": 0.0}},
                 "backends": [{"name": "tcn", "channels": 96, "layers": 2, "kernel_size": 5, "dropout": 0.0}],
                 "head": {"name": "ctc"}}
    recipe = {"name": "vsr", "model": model_cfg, "data": {"name": "manifest", "video_size": 32, "crop_method": "fixed"},
              "decoding": {"name": "greedy"}}
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    ckpt = folder / "vsr.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {"recipe": recipe, "vocabulary": CHARACTERS, "task": "ctc", "version": "bench"}}, ckpt)
    asr = Transcriber.from_checkpoint(ckpt)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    cues = transcribe_recording(asr, video, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{video.name}: {len(cues)} segments in {time.perf_counter() - start:.1f} s, "
          f"peak RSS +{peak - before:.0f} MB (above {before:.0f} MB with the model loaded)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, nargs="+", default=[60, 300])
    parser.add_argument("--size", default="360x288", help="WIDTHxHEIGHT")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure, args.measure.parent)
        return
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            video = Path(tmp) / f"{seconds}s_{width}x{height}.mp4"
            make_video(video, seconds, width, height)
            subprocess.run([sys.executable, __file__, "--measure", str(video)], check=True)


if __name__ == "__main__":
    main()
