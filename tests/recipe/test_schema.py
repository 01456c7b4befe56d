"""The typed schema: a typo in any enumerated setting fails validation with a suggestion,
and the code that runs a recipe reads its defaults from the schema."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from avtoolkit.recipe import RecipeError, validate_recipe
from avtoolkit.recipe.schema import SECTIONS, LightningPrecision, OptimConfig, Precision, section

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def problems_of(recipe, overrides) -> list[str]:
    with pytest.raises(RecipeError) as err:
        validate_recipe(recipe, overrides)
    return [p.message for p in err.value.problems]


def test_lrw_typos_in_dataset_and_optimiser_values_are_both_reported_with_suggestions():
    messages = problems_of(RECIPES / "lrw_effv2t.yaml", ["data.crop_method=facee", "optim.name=adamx"])
    assert messages == [
        "expected one of 'fixed', 'face', 'landmarks', 'auto_avsr', got 'facee' (did you mean 'face'?)",
        "expected one of 'adamw', 'adam', 'sgd', got 'adamx' (did you mean 'adam', 'adamw'?)",
    ]


def test_avasr_typos_in_noise_type_and_decoder_are_both_reported():
    messages = problems_of(RECIPES / "avasr.yaml", ["data.noise_type=pink", "decoding.name=beem"])
    assert messages == [
        "expected one of 'white', 'babble', 'mixed', got 'pink'",
        "expected one of 'greedy', 'beam', 'attention', 'joint', got 'beem' (did you mean 'beam'?)",
    ]


@pytest.mark.parametrize("override, key", [
    ("schedule.name=cosin", "schedule.name"),
    ("trainer.precision=bf16-mix", "trainer.precision"),
    ("trainer.accelerator=gpux", "trainer.accelerator"),
    ("monitor_mode=maxx", "monitor_mode"),
])
def test_every_enumerated_setting_rejects_a_typo(override, key):
    with pytest.raises(RecipeError) as err:
        validate_recipe(RECIPES / "lrw_effv2t.yaml", [override])
    (problem,) = err.value.problems
    assert problem.path == key and "did you mean" in problem.message


@pytest.mark.parametrize("value", ["bf16-mixed", "16-mixed", "32", 32, "64-true", "auto"])
def test_lightning_precision_spellings_validate(value):
    validate_recipe(RECIPES / "lrw_effv2t.yaml", [f"trainer.precision={json.dumps(value)}"])


def test_the_precision_choices_are_lightnings():
    from lightning.fabric.connector import _PRECISION_INPUT

    def flatten(t):
        args = typing.get_args(t)
        return {v for a in args for v in flatten(a)} if typing.get_origin(t) is typing.Union else set(args)

    assert set(typing.get_args(LightningPrecision)) == flatten(_PRECISION_INPUT)
    # and ``auto`` (bf16 where native, else fp32), which avtoolkit resolves before Lightning sees it
    assert set(typing.get_args(Precision)) == flatten(_PRECISION_INPUT) | {"auto"}


def test_section_fills_defaults_from_the_schema_and_ignores_unknown_keys():
    optim = section(OptimConfig, {"lr": 0.5, "not_a_key": 1})
    assert optim.lr == 0.5
    assert (optim.name, optim.weight_decay) == (OptimConfig.name, OptimConfig.weight_decay)
    for schema in SECTIONS.values():
        assert section(schema, None) == schema()


def test_the_optimiser_built_from_an_empty_section_uses_the_schema_defaults():
    import torch

    from avtoolkit.engine.optim import build_optimizer

    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], {})
    defaults = OptimConfig()
    assert type(opt).__name__.lower() == defaults.name
    assert opt.defaults["lr"] == defaults.lr and opt.defaults["weight_decay"] == defaults.weight_decay


def test_validating_the_settings_sections_does_not_import_torch():
    code = (
        "import sys\n"
        "from avtoolkit.recipe import RecipeError, validate_recipe\n"
        "try:\n"
        "    validate_recipe({'optim': {'name': 'adamx'}, 'decoding': {'name': 'beem'}})\n"
        "except RecipeError as exc:\n"
        "    print(len(exc.problems))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3", "False"]  # the missing model section, optim.name, decoding.name
