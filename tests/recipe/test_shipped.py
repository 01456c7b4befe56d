"""Shipped recipes: every command takes a recipe's name as well as a file, ``base:`` finds
shipped recipes, ``avtoolkit recipes`` lists them and ``avtoolkit recipes cp`` copies one."""

from __future__ import annotations

from pathlib import Path

import pytest

from avtoolkit.cli.main import main
from avtoolkit.recipe import RecipeError, load_recipe, validate_recipe
from avtoolkit.recipe.shipped import resolve_recipe, shipped_dir, shipped_names, shipped_recipes

REPO_RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_shipped_recipes_are_the_repository_recipes_folder():
    assert shipped_names() == sorted(p.stem for p in REPO_RECIPES.glob("*.yaml"))
    assert shipped_dir().resolve() == REPO_RECIPES


def test_every_shipped_recipe_has_a_one_line_description():
    for recipe in shipped_recipes():
        assert recipe.description and "\n" not in recipe.description, recipe.name


def test_a_name_loads_the_same_recipe_as_its_file():
    by_name = load_recipe("lrw_effv2t", ["optim.lr=0.5"])
    by_file = load_recipe(REPO_RECIPES / "lrw_effv2t.yaml", ["optim.lr=0.5"])
    assert by_name.tree == by_file.tree and by_name.tree["optim"]["lr"] == 0.5
    assert load_recipe("avasr.yaml").tree == load_recipe(REPO_RECIPES / "avasr.yaml").tree


def test_an_existing_file_wins_over_a_shipped_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "avasr").write_text("name: mine\n")
    assert load_recipe("avasr").name == "mine"


def test_an_unknown_name_suggests_shipped_recipes(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecipeError, match=r"nor is it a shipped recipe; did you mean 'avasr'.*`avtoolkit recipes`"):
        resolve_recipe("avsr")
    with pytest.raises(RecipeError, match="recipe file not found: nested/avasr.yaml"):
        resolve_recipe("nested/avasr.yaml")  # a path is never looked up among the shipped recipes


def test_base_resolves_a_shipped_name_from_anywhere(tmp_path: Path):
    child = tmp_path / "mine.yaml"
    child.write_text("base: avasr\nname: mine\noptim: {lr: 0.25}\n")
    recipe = validate_recipe(child)
    assert recipe.tree["optim"]["lr"] == 0.25
    assert recipe.tree["model"] == load_recipe("avasr").tree["model"]


def test_cli_validate_and_summary_take_a_name(capsys, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "avasr_concat", "trainer.max_epochs=1"]) == 0
    assert "avasr_concat: OK" in capsys.readouterr().out
    assert main(["summary", "demo_lrw", "--frames", "4", "--size", "32"]) == 0
    assert "total" in capsys.readouterr().out.lower()


def test_cli_recipes_lists_name_parameters_and_description(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:] if line.strip() and not line.startswith("run one")}
    assert sorted(rows) == shipped_names()
    assert lines[0].split() == ["NAME", "PARAMS", "DESCRIPTION"]
    from avtoolkit import build_model

    built = sum(p.numel() for p in build_model("demo_lrw").parameters())
    assert rows["demo_lrw"].split()[1] == f"{built / 1e6:.1f}M"
    assert "EfficientNetV2-T" in rows["lrw_effv2t"]


def test_cli_recipes_cp_copies_and_never_overwrites(tmp_path: Path, capsys):
    target = tmp_path / "edit" / "mine.yaml"
    assert main(["recipes", "cp", "avasr_concat", str(target)]) == 0
    assert target.read_text() == (REPO_RECIPES / "avasr_concat.yaml").read_text()
    validate_recipe(target)  # its `base: avasr.yaml` resolves to the shipped recipe
    target.write_text("name: edited\n")
    capsys.readouterr()
    assert main(["recipes", "cp", "avasr", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert target.read_text() == "name: edited\n"
    assert main(["recipes", "cp", "lrw_efv2t", str(tmp_path / "x.yaml")]) == 2
    assert "did you mean 'lrw_effv2t'" in capsys.readouterr().err
    assert main(["recipes", "cp", "demo_lrw", str(tmp_path)]) == 0
    assert (tmp_path / "demo_lrw.yaml").is_file()
