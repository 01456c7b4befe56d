"""Checkpoint-to-ONNX jobs: finding the manifests they read.

The jobs themselves (``avtoolkit export [--int8]``) run end to end on the GRID clips in
``test_transcriber.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from avtoolkit.inference.deploy import recipe_manifest


def test_missing_manifest_names_the_recipe_key_and_the_option(tmp_path: Path) -> None:
    recipe = {"data": {"train": str(tmp_path / "gone.txt")}}
    with pytest.raises(FileNotFoundError, match=r"no manifest for int8 calibration: the recipe's data\.train / "
                                                r"data\.val \(data\.train=.*gone\.txt not found\); give --calibration"):
        recipe_manifest(recipe, ("train", "val"), "int8 calibration", "--calibration")
    (tmp_path / "val.txt").write_text("")
    recipe["data"]["val"] = str(tmp_path / "val.txt")
    assert recipe_manifest(recipe, ("train", "val"), "int8 calibration", "--calibration") == tmp_path / "val.txt"
