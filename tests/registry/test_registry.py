"""The Registry class on isolated instances: registration, listing, teaching errors."""

from __future__ import annotations

import pytest

from avtoolkit.registry import Registry, RegistryError


def make_registry() -> Registry:
    reg = Registry("encoder", group="tests.encoders")

    @reg.register("video_cnn")
    class VideoCNN:
        """Per-frame convolutions."""

    @reg.register()
    def audio_cnn(width: int = 4) -> dict:
        """Log-mel convolutions."""
        return {"width": width}

    reg.register("effnetv2_3d", dict)
    return reg


def test_register_by_decorator_call_and_default_name():
    reg = make_registry()
    assert reg.names() == ["audio_cnn", "effnetv2_3d", "video_cnn"]
    assert reg.get("audio_cnn")(width=7) == {"width": 7}
    assert reg.get("video_cnn").__name__ == "VideoCNN"
    assert reg.entry("video_cnn").summary == "Per-frame convolutions."
    assert [e.name for e in reg] == reg.names()
    assert len(reg) == 3 and "effnetv2_3d" in reg and "nope" not in reg


def test_fnmatch_listing():
    reg = make_registry()
    assert reg.names("*_cnn") == ["audio_cnn", "video_cnn"]
    assert reg.names("eff*") == ["effnetv2_3d"]
    assert reg.names("v?deo_cnn") == ["video_cnn"]
    assert reg.names("resnet*") == []


def test_duplicate_name_names_both_sources():
    reg = make_registry()
    with pytest.raises(RegistryError) as err:
        reg.register("video_cnn", list, source="my-plugin 1.0")
    message = str(err.value)
    assert "encoder 'video_cnn' is registered twice" in message
    assert "avtoolkit" in message and "VideoCNN" in message
    assert "my-plugin 1.0" in message and "builtins:list" in message
    # the first registration is kept
    assert reg.get("video_cnn").__name__ == "VideoCNN"


def test_unknown_name_suggests_close_names_and_the_command():
    reg = make_registry()
    with pytest.raises(RegistryError) as err:
        reg.get("video_cn")
    message = str(err.value)
    assert message.startswith("unknown encoder 'video_cn'; did you mean 'video_cnn'")
    assert "`avtoolkit list-components --kind encoder`" in message


def test_unknown_name_never_dumps_every_name():
    reg = Registry("backend")
    for i in range(40):
        reg.register(f"tcn_{i:02d}", dict)
    message = reg.unknown_message("tcn_5")
    listed = [n for n in reg.names() if f"'{n}'" in message]
    assert 1 <= len(listed) <= 3
    far = reg.unknown_message("transformer")
    assert "did you mean" not in far and "list-components --kind backend" in far


def test_unregister_and_temporary_leave_no_state():
    reg = make_registry()
    assert reg.unregister("effnetv2_3d").obj is dict
    assert "effnetv2_3d" not in reg
    with pytest.raises(RegistryError, match="unknown encoder 'effnetv2_3d'"):
        reg.unregister("effnetv2_3d")
    with pytest.raises(ZeroDivisionError):
        with reg.temporary("tiny", list):
            assert reg.get("tiny") is list
            1 / 0
    assert "tiny" not in reg
    with pytest.raises(RegistryError, match="registered twice"):
        with reg.temporary("audio_cnn", list):
            pass
    assert reg.get("audio_cnn")(width=1) == {"width": 1}  # a failed temporary removes nothing


def test_lazy_entry_loads_once_and_a_failure_marks_it_broken():
    reg = Registry("head")
    calls = []

    def load_ok():
        calls.append(1)
        return dict

    def load_bad():
        raise ImportError("No module named 'torchvision_extra'")

    reg.add_lazy("good", load_ok, source="good-plugin 0.3", spec="good_plugin:Head")
    reg.add_lazy("bad", load_bad, source="bad-plugin 0.1", spec="bad_plugin:Head")
    assert calls == [] and reg.entry("good").summary == "(not loaded)"
    assert reg.get("good") is dict and reg.get("good") is dict
    assert calls == [1]
    with pytest.raises(RegistryError) as err:
        reg.get("bad")
    assert "head 'bad' from bad-plugin 0.1 failed to load (bad_plugin:Head)" in str(err.value)
    assert isinstance(err.value.__cause__, ImportError)
    entry = reg.entry("bad")
    assert entry.broken and entry.summary.startswith("BROKEN: ImportError")
    with pytest.raises(RegistryError, match="is broken"):
        reg.get("bad")


def _write_package(root, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_locations_are_imported_on_first_use_recursively_skipping_private_names(tmp_path, monkeypatch):
    import sys

    reg = Registry("head", locations=["loc_pkg_avt"])
    register = "from {mod} import REG\n@REG.register('{name}')\nclass C:\n    '''{name}.'''\n"
    _write_package(tmp_path, {
        "loc_pkg_avt/__init__.py": "",
        "loc_pkg_avt/top.py": register.format(mod="loc_pkg_avt._reg", name="top_head"),
        "loc_pkg_avt/_private.py": register.format(mod="loc_pkg_avt._reg", name="private_head"),
        "loc_pkg_avt/corpus/__init__.py": "",
        "loc_pkg_avt/corpus/datamodule.py": register.format(mod="loc_pkg_avt._reg", name="nested_head"),
        "loc_pkg_avt/_reg.py": "REG = None\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    import loc_pkg_avt._reg as holder

    holder.REG = reg
    assert "loc_pkg_avt.top" not in sys.modules  # nothing is imported before the first lookup
    assert reg.names() == ["nested_head", "top_head"]
    assert "loc_pkg_avt._private" not in sys.modules
    for name in [m for m in sys.modules if m.startswith("loc_pkg_avt")]:
        monkeypatch.delitem(sys.modules, name)


def test_a_clash_while_loading_is_raised_on_every_later_lookup(tmp_path, monkeypatch):
    reg = Registry("head", locations=["clash_pkg_avt"])
    _write_package(tmp_path, {
        "clash_pkg_avt/__init__.py": "",
        "clash_pkg_avt/a.py": "from clash_pkg_avt import _reg\n_reg.REG.register('same', dict)\n",
        "clash_pkg_avt/b.py": "from clash_pkg_avt import _reg\n_reg.REG.register('same', list)\n",
        "clash_pkg_avt/_reg.py": "REG = None\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    import clash_pkg_avt._reg as holder

    holder.REG = reg
    for _ in range(2):  # a half-filled registry is never used as if complete
        with pytest.raises(RegistryError, match="head 'same' is registered twice"):
            reg.names()


def test_an_encoder_that_does_not_name_its_modality_fails_at_registration():
    from avtoolkit.models.contract import Encoder
    from avtoolkit.registry import registry_for

    class ForgetfulAudio(Encoder):
        output_dim = 4

    with pytest.raises(RegistryError, match=r"ForgetfulAudio does not set the class attribute `modality`"):
        registry_for("encoder").register("forgetful_audio", ForgetfulAudio)
    assert "forgetful_audio" not in registry_for("encoder")


def test_every_builtin_encoder_names_the_batch_key_it_reads():
    from avtoolkit.registry import registry_for

    for entry in registry_for("encoder"):
        if entry.source == "avtoolkit":
            assert entry.obj.modality in ("video", "audio", "text"), entry.name
