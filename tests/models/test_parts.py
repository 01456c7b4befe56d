"""Initialising parts of a model from other checkpoints (the recipe's ``init`` section)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from avtoolkit import build_model
from avtoolkit.models.assemble import assemble
from avtoolkit.models.checkpoint import compare_state_dicts
from avtoolkit.models.parts import check_parts, frozen_parts, init_parts, rename, under
from avtoolkit.recipe import RecipeError, load_recipe, validate_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

#: a small audio-visual model; ``audio`` / ``tcn`` arguments change shapes on purpose.
def _model_section(audio_hidden: int = 32, tcn_channels: int = 32, head: str = "ctc") -> dict[str, Any]:
    return {
        "encoders": {"audio": {"name": "audio_cnn", "channels": [4, 8], "hidden_dim": audio_hidden},
                     "video": {"name": "video_cnn", "channels": [4, 8], "hidden_dim": 16}},
        "fusion": {"name": "concat", "rate": 25.0, "dim": 32},
        "backends": [{"name": "tcn", "channels": tcn_channels, "layers": 1}],
        "head": {"name": head, **({"vocab_size": 6} if head == "ctc" else {"num_classes": 3})},
    }


def _recipe(init: list[dict[str, Any]], source: Path | None = None) -> Any:
    recipe = load_recipe({"model": _model_section(), "init": init})
    recipe.source = source
    return recipe


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A saved run-like checkpoint (Lightning keys, EMA shadow) of the same model section."""
    torch.manual_seed(1)
    model = assemble(_model_section())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    shadow = {k: v + 1.0 if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()},
                "callbacks": {"EMA": {"shadow": shadow}}}, path)
    return path, shadow


def test_loads_the_taken_part_from_the_ema_weights_and_leaves_the_rest(source):
    path, shadow = source
    torch.manual_seed(2)
    model = assemble(_model_section())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    parts = init_parts(model, _recipe([{"path": str(path), "take": "encoders.audio"}]))
    after = model.state_dict()
    assert [(p.key, p.into, p.count) for p in parts] == [("init.0", "encoders.audio", len(under(after, "encoders.audio")))]
    for key, value in after.items():
        expected = shadow[key] if key.startswith("encoders.audio.") else before[key]
        assert torch.equal(value, expected), key


def test_into_moves_a_part_to_another_key(source, tmp_path: Path):
    path, shadow = source
    two = _model_section()
    two["backends"] = [two["backends"][0], dict(two["backends"][0])]
    model = assemble(two)
    recipe = load_recipe({"model": two, "init": [{"path": str(path), "take": "backends.0", "into": "backends.1"}]})
    init_parts(model, recipe)
    for key, value in under(model.state_dict(), "backends.1").items():
        assert torch.equal(value, shadow["backends.0" + key[len("backends.1"):]]), key


def test_strict_reports_missing_unexpected_and_mis_shaped_keys_at_the_recipe_key(tmp_path: Path):
    wide = assemble(_model_section(tcn_channels=48))
    state = {k: v for k, v in wide.state_dict().items() if k != "backends.0.blocks.0.conv1.bias"}
    state["backends.0.extra.weight"] = torch.zeros(2)
    path = tmp_path / "wide.pt"
    torch.save(state, path)  # a plain state dict
    model = assemble(_model_section())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = _recipe([{"path": str(path), "take": "backends.0"}])
    with pytest.raises(RecipeError) as err:
        init_parts(model, recipe)
    text = str(err.value)
    assert "init.0.take: backends.0 of " + str(path) in text and "init.0.strict: false" in text
    assert "missing in checkpoint (1): backends.0.blocks.0.conv1.bias" in text
    assert ("not in model (3): backends.0.blocks.0.downsample.bias, backends.0.blocks.0.downsample.weight, "
            "backends.0.extra.weight") in text
    assert "backends.0.blocks.0.conv2.weight checkpoint [48, 48, 3] vs model [32, 32, 3]" in text
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing loaded


def test_non_strict_loads_what_fits_and_names_the_rest(tmp_path: Path):
    other = assemble(_model_section(audio_hidden=24))
    path = tmp_path / "other.pt"
    torch.save(other.state_dict(), path)
    model = assemble(_model_section())
    [part] = init_parts(model, _recipe([{"path": str(path), "take": "encoders.audio", "strict": False}]))
    assert not part.diff.clean and part.diff.mismatched
    assert "partial (strict: false)" in part.describe() and "shape differs" in part.describe()
    assert [k for k, _, _ in part.diff.mismatched] == ["encoders.audio.fc.0.bias", "encoders.audio.fc.0.weight",
                                                       "encoders.audio.fc.3.bias", "encoders.audio.fc.3.weight"]
    mine, theirs = model.state_dict(), other.state_dict()
    assert torch.equal(mine["encoders.audio.convs.1.0.weight"], theirs["encoders.audio.convs.1.0.weight"])
    assert mine["encoders.audio.fc.0.weight"].shape == (32, 80)  # kept its own


def test_prefixes_that_name_nothing_are_errors_with_the_closest_parts(source, tmp_path: Path):
    path, _ = source
    recipe = _recipe([{"path": str(path), "take": "encoders.vidoe"},
                      {"path": str(path), "take": "head", "into": "heads"},
                      {"path": str(tmp_path / "none.ckpt"), "take": "fusion"}])
    with pytest.raises(RecipeError) as err:
        check_parts(assemble(_model_section()), recipe)
    text = str(err.value)
    assert "has 4 problems" in text  # every problem at once
    assert "init.0.take: this model has no part 'encoders.vidoe'; did you mean 'encoders.video'" in text
    assert f"init.0.take: {path} has no part 'encoders.vidoe'" in text
    assert "its parts: encoders.audio, encoders.video, fusion, backends.0, head" in text
    assert "init.1.into: this model has no part 'heads'; did you mean 'head'?" in text
    assert f"init.2.path: no such file: {tmp_path / 'none.ckpt'}" in text


def test_a_relative_path_resolves_beside_the_recipe_and_unsafe_files_are_refused(source, tmp_path: Path):
    path, _ = source
    recipe = _recipe([{"path": path.name, "take": "head"}], source=tmp_path / "recipe.yaml")
    assert [p.path for p in check_parts(assemble(_model_section()), recipe)] == [path]
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"obj": argparse.Namespace(a=1)}, unsafe)
    with pytest.raises(RecipeError, match=r"init\.0\.path: .*refused: the checkpoint needs arbitrary code"):
        check_parts(assemble(_model_section()), _recipe([{"path": str(unsafe), "take": "head"}]))


def test_overlapping_parts_are_refused(source):
    path, _ = source
    recipe = _recipe([{"path": str(path), "take": "encoders"}, {"path": str(path), "take": "encoders.video"}])
    with pytest.raises(RecipeError, match=r"init\.1\.take: 'encoders.video' overlaps init\.0 \('encoders'\)"):
        check_parts(assemble(_model_section()), recipe)


def test_frozen_parts_are_read_from_the_recipe():
    recipe = _recipe([{"path": "a", "take": "encoders.audio", "freeze_epochs": 3},
                      {"path": "a", "take": "backends.0", "into": "backends.0", "freeze_epochs": 0}])
    assert frozen_parts(recipe) == {"encoders.audio": 3}


def test_validation_checks_the_settings_not_the_files():
    base = {"model": _model_section()}
    validate_recipe({**base, "init": [{"path": "runs/not/yet/trained.ckpt", "take": "encoders.video"}]})
    with pytest.raises(RecipeError) as err:
        validate_recipe({**base, "init": [{"take": "encoders/video", "freeze_epochs": -1, "strickt": True}]})
    text = str(err.value)
    assert "init.0.path: missing: required" in text
    assert "init.0.take: must be a dotted module path" in text
    assert "init.0.freeze_epochs: must be at least 0, got -1" in text
    assert "init.0.strickt: unknown key (did you mean 'strict'?)" in text
    with pytest.raises(RecipeError, match="init: must be a list of parts"):
        validate_recipe({**base, "init": {"path": "a", "take": "head"}})


# ---- the shipped recipes: every part they take fits the model of the run it comes from --------
FROM_IMPORTED = {"auto_avsr_finetune_grid", "auto_avsr_asr_finetune_grid"}


def _shipped_parts() -> list[tuple[str, int, str, str, str]]:
    rows = []
    for path in sorted(RECIPES.glob("*.yaml")):
        for i, entry in enumerate(load_recipe(path).get("init") or []):
            source = re.fullmatch(r"runs/(\w+)/checkpoints/\w+\.ckpt", entry["path"])
            if path.stem in FROM_IMPORTED:
                # parts of a converted auto_avsr checkpoint (`avtoolkit import-checkpoint`), not of a
                # shipped run: tests/models/test_auto_avsr_finetune.py loads them.
                assert source is None, f"{path.name}: init.{i}.path names a run; drop it from FROM_IMPORTED"
                continue
            assert source, f"{path.name}: init.{i}.path should be runs/<shipped recipe>/checkpoints/best.ckpt"
            rows.append((path.stem, i, source.group(1), entry["take"], entry.get("into") or entry["take"]))
    return rows


SHIPPED_PARTS = _shipped_parts()


def test_the_from_parts_recipes_ship():
    assert {r[0] for r in SHIPPED_PARTS} >= {"grid_video_from_words", "grid_avasr_from_parts"}


@pytest.mark.parametrize("target, index, source, take, into", SHIPPED_PARTS,
                         ids=[f"{r[0]}-init.{r[1]}-{r[2]}" for r in SHIPPED_PARTS])
def test_shipped_parts_fit_between_the_source_and_target_recipes(target: str, index: int, source: str, take: str,
                                                                 into: str, tmp_path: Path):
    source_model = build_model(RECIPES / f"{source}.yaml")
    target_recipe = validate_recipe(RECIPES / f"{target}.yaml")
    target_model = build_model(target_recipe)
    diff = compare_state_dicts(under(target_model.state_dict(), into),
                               rename(under(source_model.state_dict(), take), take, into))
    assert diff.clean, diff.describe()
    assert under(target_model.state_dict(), into)
    # and through the code a run uses, from a checkpoint file of the source model
    saved = tmp_path / "best.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in source_model.state_dict().items()}}, saved)
    target_recipe.tree["init"] = [{**target_recipe["init"][index], "path": str(saved)}]
    [part] = init_parts(target_model, target_recipe)
    assert part.diff.clean
    loaded = under(target_model.state_dict(), into)
    assert all(torch.equal(v, source_model.state_dict()[take + k[len(into):]]) for k, v in loaded.items())
