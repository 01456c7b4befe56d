"""``validate_recipe``: every problem at once, each with its recipe path and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from avtoolkit.recipe import RecipeError, validate_recipe

GOOD = {
    "name": "tiny_av",
    "model": {
        "encoders": {"video": {"name": "t_video", "width": 8}, "audio": {"name": "t_audio"}},
        "fusion": {"name": "t_concat"},
        "backends": [{"name": "t_linear", "hidden": 4}],
        "head": {"name": "t_classifier", "num_classes": 3},
    },
    "trainer": {"max_epochs": 2},
    "optim": {"name": "adamw", "lr": 1e-3},
}


def problems_of(recipe, overrides=None) -> list[str]:
    with pytest.raises(RecipeError) as err:
        validate_recipe(recipe, overrides)
    return [str(p) for p in err.value.problems]


def test_good_recipe_validates(tiny_components):
    recipe = validate_recipe(GOOD)
    assert recipe.name == "tiny_av"
    assert validate_recipe(GOOD, ["model.backends.0.hidden=7"])["model"]["backends"][0]["hidden"] == 7


def test_typod_argument_names_the_path_and_the_close_argument(tiny_components):
    problems = problems_of(GOOD, ["model.encoders.video.widht=16"])
    assert problems == ["model.encoders.video.widht: unexpected argument (did you mean 'width'?)"]


def test_problem_from_an_override_points_at_the_command_line_not_the_file(tiny_components, tmp_path):
    import yaml

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(GOOD, sort_keys=False))
    problems = problems_of(path, ["model.backends.0.hiden=3", "model.encoders.video.width=x"])
    assert ("override 'model.backends.0.hiden=3': model.backends.0.hiden: "
            "unexpected argument (did you mean 'hidden'?)") in problems
    assert any(p.startswith("override 'model.encoders.video.width=x': model.encoders.video.width: expected int")
               for p in problems)
    # a typo in the file itself keeps its file and line
    bad = {**GOOD, "model": {**GOOD["model"], "head": {"name": "t_classifier", "num_clases": 3}}}
    path.write_text(yaml.safe_dump(bad, sort_keys=False))
    assert problems_of(path, ["model.backends.0.hidden=3"])[0].startswith(f"{path}:")


def test_typod_component_names_kind_close_names_and_command(tiny_components):
    problems = problems_of(GOOD, ["model.backends.0.name=t_linaer"])
    assert len(problems) == 1
    assert problems[0].startswith("model.backends.0.name: unknown backend 't_linaer'; did you mean 't_linear'")
    assert problems[0].endswith("(see `avtoolkit list-components --kind backend`)")


def test_every_problem_is_reported_at_once(tiny_components):
    problems = problems_of(GOOD, [
        "model.encoders.video.widht=16",
        "model.encoders.audio.name=t_audoi",
        "model.head.num_classes=three",
        "trainr.max_epochs=3",
        "trainer.max_epoch=3",
        "optim.lr=fast",
        "model.backend=[]",
    ])
    assert len(problems) == 7, problems
    joined = "\n".join(problems)
    assert "model.encoders.video.widht: unexpected argument (did you mean 'width'?)" in joined
    assert "model.encoders.audio.name: unknown encoder 't_audoi'; did you mean 't_audio'" in joined
    assert "model.head.num_classes: expected int, got 'three'" in joined
    assert "trainr: unknown top-level key (did you mean 'trainer'" in joined
    assert "trainer.max_epoch: unknown key (did you mean 'max_epochs'?)" in joined
    assert "optim.lr: expected float, got 'fast'" in joined
    assert "model.backend: unknown key (did you mean 'backends'?)" in joined


def test_injected_sizes_are_rejected(tiny_components):
    problems = problems_of(GOOD, ["model.backends.0.input_dim=8", "model.fusion.input_dims={video: 8}"])
    assert problems == [
        "model.fusion.input_dims: is derived from the previous component by the assembler; remove it from the recipe",
        "model.backends.0.input_dim: is derived from the previous component by the assembler; remove it from the recipe",
    ]


def test_structure_problems(tiny_components):
    assert problems_of({"model": {"encoders": {"video": {"name": "t_video"}}}}) == [
        "model.head: missing: which registered head to use"]
    assert problems_of({"model": {"encoders": {}, "head": {"name": "t_classifier", "num_classes": 2}}}) == [
        "model.encoders: needs at least one encoder, keyed by modality (video: {name: ...})"]
    two = {"model": {"encoders": GOOD["model"]["encoders"], "head": {"name": "t_classifier"}}}
    assert problems_of(two) == [
        "model.fusion: 2 encoders need a fusion (see `avtoolkit list-components --kind fusion`)",
        "model.head.num_classes: missing required argument",
    ]
    assert problems_of({"seed": "one", "model": {"encoders": {"audio": {"name": "t_video"}},
                                                "backends": {"name": "t_linear"},
                                                "head": {"width": 3}}}) == [
        "seed: expected int, got 'one'",
        "model.encoders.audio: encoder 't_video' reads video, but is keyed 'audio'; key it 'video'",
        "model.backends: must be a list of backends",
        "model.head.name: missing: which registered head to use",
    ]
    assert problems_of({"model": {"encoders": {"video": {"name": ["t_video"]}}, "head": "t_classifier"}}) == [
        "model.encoders.video.name: must be the name of a registered encoder, got ['t_video']",
        "model.head: must be a mapping with a 'name' key naming a registered head",
    ]


def test_literal_arguments_are_checked(tiny_components):
    assert problems_of(GOOD, ["model.encoders.video.pool=median"]) == [
        "model.encoders.video.pool: expected one of 'mean', 'max', got 'median' (did you mean 'mean'?)"]
    validate_recipe(GOOD, ["model.encoders.video.pool=max"])


def test_problems_from_a_file_carry_file_and_line(tiny_components, tmp_path: Path):
    path = tmp_path / "typo.yaml"
    path.write_text(
        "model:\n"
        "  encoders:\n"
        "    video:\n"
        "      name: t_video\n"
        "      widht: 16\n"
        "  head: {name: t_classifer, num_classes: 3}\n"
    )
    with pytest.raises(RecipeError) as err:
        validate_recipe(path)
    message = str(err.value)
    assert message.startswith(f"recipe {path} has 2 problems:")
    assert f"{path.resolve()}:5: model.encoders.video.widht: unexpected argument (did you mean 'width'?)" in message
    assert f"{path.resolve()}:6: model.head.name: unknown head 't_classifer'" in message


def test_data_section_requires_a_registered_dataset(tiny_components):
    problems = problems_of(dict(GOOD, data={"name": "no_such_dataset_xyz"}))
    assert problems[0].startswith("data.name: unknown dataset 'no_such_dataset_xyz'")
    with pytest.raises(RecipeError, match="data: missing: the data section"):
        validate_recipe(GOOD, require_data=True)
