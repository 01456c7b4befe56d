"""A synthetic audio-visual speech corpus written as real media, for the demo and tests.

``generate_corpus(out_dir, size="small", seed=0)`` writes an LRW-layout word set (mp4
with AAC audio + ``.txt`` Duration metadata) and a GRID-like sentence set (wav + mp4 +
``audio|video|transcript`` manifests). Speech is formant-synthesised per phone
(:mod:`.speech`), the face is rendered with lips following per-phone visemes
(:mod:`.face`); see docs/demo.md.
"""

from avtoolkit.data.demo.corpus import SIZES, DemoSize, generate_corpus

__all__ = ["SIZES", "DemoSize", "generate_corpus"]
