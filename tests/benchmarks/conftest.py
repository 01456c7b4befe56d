"""A tiny LRW-shaped recipe (real effnetv2_3d + tcn + word_classifier) the benchmark tests run."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_RECIPE = """\
model:
  encoders:
    video: {name: effnetv2_3d, size: t, width: 0.25, depth: 0.2, head_features: 0, output_dim: 32}
  backends:
    - {name: tcn, channels: 32, layers: 2}
  head: {name: word_classifier, num_classes: 5}
"""


@pytest.fixture(scope="module")
def tiny_recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_lrw.yaml`` in a fresh folder, shared by one test module."""
    path = tmp_path_factory.mktemp("recipe") / "tiny_lrw.yaml"
    path.write_text(TINY_RECIPE)
    return path
