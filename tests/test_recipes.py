"""Every shipped recipe under recipes/ validates and builds (parametrized over the folder)."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest

from avtoolkit import build_model, validate_recipe
from avtoolkit.registry import registry_for

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
# Components that ship in plugins/ rather than in avtoolkit itself, and their distribution.
PLUGIN_COMPONENTS = {"resnet18_3d": "avtoolkit-resnet"}


def _needs_missing_plugin(recipe) -> str | None:
    for spec in recipe["model"]["encoders"].values():
        dist = PLUGIN_COMPONENTS.get(spec.get("name"))
        if dist is not None:
            try:
                md.distribution(dist)
            except md.PackageNotFoundError:
                return f"needs the {dist} plugin: pip install -e plugins/{dist} (make test does)"
    return None


def test_there_are_recipes():
    assert RECIPES, "recipes/ holds no *.yaml"


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_validates_and_builds(path: Path):
    from avtoolkit.recipe import load_recipe

    reason = _needs_missing_plugin(load_recipe(path))
    if reason:
        pytest.skip(reason)
    recipe = validate_recipe(path)
    model = build_model(recipe)
    spec = recipe["model"]
    for modality, enc in spec["encoders"].items():
        assert type(model.encoders[modality]) is registry_for("encoder").get(enc["name"])
    for backend, bspec in zip(model.backends, spec.get("backends") or [], strict=True):
        assert type(backend) is registry_for("backend").get(bspec["name"])
    assert type(model.head) is registry_for("head").get(spec["head"]["name"])
    assert sum(p.numel() for p in model.parameters()) > 0
