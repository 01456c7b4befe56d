"""The demo: a synthetic audio-visual speech corpus written as real media, and the main job.

``generate_corpus(out_dir, size="small", seed=0)`` writes an LRW-layout word set (mp4
with AAC audio + ``.txt`` Duration metadata) and a GRID-like sentence set (wav + mp4 +
``audio|video|transcript`` manifests). Speech is formant-synthesised per phone
(:mod:`.speech`), the face is rendered with lips following per-phone visemes
(:mod:`.talking_face`). ``run_demo(out_dir)`` (:mod:`.job`) trains and tests both demo recipes
on it, measures WER against SNR (with :mod:`avtoolkit.engine.noise_eval`), exports to ONNX and
writes the report; see docs/demo.md.
"""

from avtoolkit.demo.corpus import SIZES, DemoSize, generate_corpus
from avtoolkit.demo.job import run_demo

__all__ = ["SIZES", "DemoSize", "generate_corpus", "run_demo"]
