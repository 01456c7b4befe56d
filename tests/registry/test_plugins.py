"""Entry-point discovery with real ``importlib.metadata`` objects built in a temp folder.

Each test writes a ``<name>.dist-info`` (METADATA + entry_points.txt), so the
``EntryPoint`` objects carry a real distribution name and version, exactly as pip leaves
them; the registries are isolated instances.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
from pathlib import Path

import pytest

from avtoolkit.registry import Registry, RegistryError
from avtoolkit.registry.describe import as_dict
from avtoolkit.registry.plugins import PluginWarning, load_or_warn, register_entry_points


def fake_dist(root: Path, name: str, version: str, encoders: dict[str, str]) -> list[md.EntryPoint]:
    """Writes a dist-info declaring ``encoders`` and returns its entry points."""
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in encoders.items())
    (info / "entry_points.txt").write_text(f"[avtoolkit.encoders]\n{lines}\n")
    return list(md.PathDistribution(info).entry_points.select(group="avtoolkit.encoders"))


@pytest.fixture
def encoders() -> Registry:
    return Registry("encoder", group="avtoolkit.encoders")


def test_listing_does_not_import_the_plugin(tmp_path, monkeypatch, encoders):
    (tmp_path / "lazy_plugin_mod.py").write_text(
        "class LazyEncoder:\n    '''A plugin encoder imported only when used.'''\n"
        "    def __init__(self, width: int = 3):\n        self.width = width\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "lazy_plugin_mod", raising=False)
    eps = fake_dist(tmp_path / "site", "lazy-plugin", "2.5.1", {"lazy_enc": "lazy_plugin_mod:LazyEncoder"})
    register_entry_points(encoders, eps)
    assert encoders.names() == ["lazy_enc"]
    assert "lazy_plugin_mod" not in sys.modules
    entry = encoders.entry("lazy_enc")
    assert entry.source == "lazy-plugin 2.5.1" and entry.spec == "lazy_plugin_mod:LazyEncoder"
    assert encoders.get("lazy_enc")(width=4).width == 4
    assert "lazy_plugin_mod" in sys.modules
    row = as_dict(entry)
    assert row["summary"] == "A plugin encoder imported only when used."
    assert row["arguments"] == [{"name": "width", "type": "int", "default": 3, "required": False}]


def test_broken_plugin_is_a_warning_and_a_broken_row(tmp_path, monkeypatch, encoders):
    monkeypatch.delenv("AVTOOLKIT_STRICT_PLUGINS", raising=False)
    eps = fake_dist(tmp_path, "broken-plugin", "0.0.1", {"broken_enc": "no_such_module_avt:Encoder"})
    eps.append(md.EntryPoint(name="fine_enc", value="collections:OrderedDict", group="avtoolkit.encoders"))
    register_entry_points(encoders, eps)  # registering reads metadata only: no warning yet
    with pytest.warns(PluginWarning, match=r"encoder 'broken_enc' from broken-plugin 0\.0\.1 failed to load"):
        load_or_warn(encoders)
    row = as_dict(encoders.entry("broken_enc"))
    assert row["broken"] is True
    assert row["error"] == "ModuleNotFoundError: No module named 'no_such_module_avt'"
    assert row["source"] == "broken-plugin 0.0.1"
    # the other plugin still works; a plain EntryPoint has no distribution to name
    fine = encoders.entry("fine_enc")
    assert not fine.broken and fine.source == "unknown distribution"


@pytest.mark.parametrize("value", ["1", "true"])
def test_strict_mode_makes_a_broken_plugin_an_error(tmp_path, monkeypatch, encoders, value):
    monkeypatch.setenv("AVTOOLKIT_STRICT_PLUGINS", value)
    eps = fake_dist(tmp_path, "broken-plugin", "0.0.1", {"broken_enc": "no_such_module_avt:Encoder"})
    with pytest.raises(RegistryError, match="broken_enc' from broken-plugin 0.0.1 failed to load") as err:
        register_entry_points(encoders, eps)
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_two_plugins_with_one_name_is_an_error_naming_both(tmp_path, encoders):
    eps = fake_dist(tmp_path / "a", "alpha-plugin", "1.0", {"resnet18_3d": "alpha.enc:ResNet"})
    eps += fake_dist(tmp_path / "b", "beta-plugin", "2.0", {"resnet18_3d": "beta.enc:ResNet"})
    with pytest.raises(RegistryError) as err:
        register_entry_points(encoders, eps)
    message = str(err.value)
    assert "encoder 'resnet18_3d' is registered twice" in message
    assert "alpha-plugin 1.0 (alpha.enc:ResNet)" in message and "beta-plugin 2.0 (beta.enc:ResNet)" in message


def test_plugin_clashing_with_a_builtin_is_an_error_naming_both(tmp_path, encoders):
    encoders.register("video_cnn", dict)
    eps = fake_dist(tmp_path, "copycat", "0.2", {"video_cnn": "copycat:VideoCNN"})
    with pytest.raises(RegistryError, match=r"by avtoolkit \(builtins:dict\) and by copycat 0\.2"):
        register_entry_points(encoders, eps)


def test_a_registry_without_group_takes_no_plugins(tmp_path):
    reg = Registry("encoder")
    register_entry_points(reg, fake_dist(tmp_path, "p", "1", {"x": "p:X"}))
    assert len(reg) == 0


def test_a_plugin_encoder_without_modality_fails_when_first_loaded(tmp_path, monkeypatch):
    from avtoolkit.registry.kinds import ENCODERS

    (tmp_path / "no_modality_plugin_avt.py").write_text(
        "from avtoolkit.models.contract import Encoder\n"
        "class Forgetful(Encoder):\n    '''Reads something.'''\n    output_dim = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("encoder", group="avtoolkit.encoders", check=ENCODERS.check)
    register_entry_points(reg, fake_dist(tmp_path / "site", "forgetful", "0.1", {"forgetful": "no_modality_plugin_avt:Forgetful"}))
    assert reg.names() == ["forgetful"]  # listing imports nothing, so it cannot check yet
    for _ in range(2):  # the entry stays broken: never built as if it read video
        with pytest.raises(RegistryError, match="Forgetful does not set the class attribute `modality`"):
            reg.get("forgetful")
    assert reg.entry("forgetful").broken
