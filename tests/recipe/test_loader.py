"""Recipe files: ``base:`` inheritance with deep merge, cycles, and file:line in errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from avtoolkit.recipe import RecipeError, load_recipe


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BASE = """\
name: lrw_base
seed: 1
model:
  encoders:
    video: {name: effnetv2_3d, size: t}
  backends:
    - {name: transformer, layers: 6}
    - {name: tcn}
  head: {name: word_classifier, num_classes: 500}
optim:
  lr: 0.001
  weight_decay: 0.05
"""


def test_base_is_deep_merged(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", """\
base: base.yaml
name: lrw_small
model:
  encoders:
    video: {size: s}
  head: {num_classes: 10}
optim: {lr: 0.0003}
""")
    r = load_recipe(child)
    assert r.name == "lrw_small" and r["seed"] == 1
    assert r["model"]["encoders"]["video"] == {"name": "effnetv2_3d", "size": "s"}
    assert r["model"]["head"] == {"name": "word_classifier", "num_classes": 10}
    assert r["optim"] == {"lr": 0.0003, "weight_decay": 0.05}
    assert len(r["model"]["backends"]) == 2 and "base" not in r.tree


def test_a_component_whose_name_changes_replaces_the_bases_arguments(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", """\
base: base.yaml
model:
  encoders:
    video: {name: video_cnn, channels: [8, 16]}
  head: {name: ctc}
optim: {name: sgd}
""")
    r = load_recipe(child)
    assert r["model"]["encoders"]["video"] == {"name": "video_cnn", "channels": [8, 16]}  # no size: t
    assert r["model"]["head"] == {"name": "ctc"}  # no num_classes
    assert r["optim"] == {"name": "sgd", "lr": 0.001, "weight_decay": 0.05}  # settings still merge


def test_lists_replace_and_bases_chain_in_order(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    write(tmp_path / "mid.yaml", "base: base.yaml\nmodel:\n  backends:\n    - {name: ms_tcn}\n")
    write(tmp_path / "extra.yaml", "seed: 7\noptim: {weight_decay: 0.0}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    top = write(sub / "top.yaml", "base: [../mid.yaml, ../extra.yaml]\nseed: 9\n")
    r = load_recipe(top)
    # a list is replaced, not merged item by item
    assert r["model"]["backends"] == [{"name": "ms_tcn"}]
    assert r["optim"] == {"lr": 0.001, "weight_decay": 0.0}  # later base wins over earlier
    assert r["seed"] == 9  # the file itself wins over its bases


def test_overrides_apply_after_base(tmp_path):
    write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", "base: base.yaml\n")
    r = load_recipe(child, ["model.backends.0.layers=2", "optim.lr=5e-4"])
    assert r["model"]["backends"][0] == {"name": "transformer", "layers": 2}
    assert r["optim"]["lr"] == 0.0005
    assert load_recipe(child)["model"]["backends"][0]["layers"] == 6  # the file is untouched


def test_base_cycle_is_reported_with_the_files(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\nseed: 1\n")
    write(tmp_path / "b.yaml", "base: c.yaml\n")
    write(tmp_path / "c.yaml", "base: a.yaml\n")
    with pytest.raises(RecipeError, match="cycle") as err:
        load_recipe(tmp_path / "a.yaml")
    message = str(err.value)
    assert message.count("a.yaml") == 2 and "b.yaml" in message and "c.yaml" in message


def test_self_base_is_a_cycle(tmp_path):
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(write(tmp_path / "me.yaml", "base: me.yaml\n"))


def test_missing_base_names_file_and_line(tmp_path):
    child = write(tmp_path / "child.yaml", "seed: 1\n\nbase: nowhere.yaml\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(child)
    assert f"{child.resolve()}:3: base: base recipe 'nowhere.yaml' not found" in str(err.value)


def test_invalid_yaml_names_file_and_line(tmp_path):
    bad = write(tmp_path / "bad.yaml", "model:\n  head: {name: ctc\nseed: 1\n")
    with pytest.raises(RecipeError, match="invalid YAML") as err:
        load_recipe(bad)
    assert f"{bad.resolve()}:3" in str(err.value)
    assert isinstance(err.value.__cause__, yaml.YAMLError)


def test_a_recipe_must_be_a_mapping(tmp_path):
    with pytest.raises(RecipeError, match="must be a mapping of sections, got list"):
        load_recipe(write(tmp_path / "list.yaml", "- a\n- b\n"))
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "absent.yaml")


def test_line_numbers_follow_keys_through_bases(tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    child = write(tmp_path / "child.yaml", "base: base.yaml\n\nmodel:\n  head: {num_classes: 10}\n")
    r = load_recipe(child)
    assert r.where("model.head.num_classes") == f"{child.resolve()}:4"
    assert r.where("model.backends.1.name") == f"{base.resolve()}:8"
    assert r.where("optim.weight_decay") == f"{base.resolve()}:12"
    # a key that no file set falls back to its closest parent
    assert r.where("optim.betas") == r.where("optim")


def test_dicts_and_resolved_yaml_round_trip(tmp_path):
    base = write(tmp_path / "base.yaml", BASE)
    r = load_recipe(base)
    again = load_recipe(yaml.safe_load(r.to_yaml()))
    assert again.tree == r.tree and again.name == "lrw_base"
    assert load_recipe(again).tree == r.tree  # a Recipe is accepted too, and copied
    with pytest.raises(RecipeError, match="'base' is only understood in recipe files"):
        load_recipe({"base": "base.yaml"})
    with pytest.raises(TypeError, match="not int"):
        load_recipe(3)


def test_an_encoder_set_to_null_is_dropped(tmp_path):
    write(tmp_path / "av.yaml", "model:\n  encoders:\n    video: {name: video_cnn}\n    audio: {name: audio_cnn}\n"
                                "  fusion: {name: concat}\n")
    child = write(tmp_path / "audio_only.yaml", "base: av.yaml\nmodel:\n  encoders: {video: null}\n  fusion: null\n")
    r = load_recipe(child)
    assert r["model"]["encoders"] == {"audio": {"name": "audio_cnn"}} and r["model"].get("fusion") is None
    assert load_recipe(tmp_path / "av.yaml", ["model.encoders.audio=null"])["model"]["encoders"] == {
        "video": {"name": "video_cnn"}}


def test_pretrained_path_shorthand(tmp_path):
    r = load_recipe({"pretrained": "runs/lrw/checkpoints/best.ckpt"})
    assert r["pretrained"] == {"path": "runs/lrw/checkpoints/best.ckpt"}
    assert load_recipe({}, ["pretrained=w.pt"])["pretrained"] == {"path": "w.pt"}
    assert load_recipe({"pretrained": {"path": "w.pt", "strict": False}})["pretrained"]["strict"] is False
