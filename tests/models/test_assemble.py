"""The assembler wires sizes between parts and never rewraps constructor errors."""

from __future__ import annotations

import pytest
import torch

from avtoolkit import build_model
from avtoolkit.models import AVModel, assemble

AV = {
    "encoders": {"video": {"name": "t_video", "width": 8, "in_channels": 3}, "audio": {"name": "t_audio", "width": 5}},
    "fusion": {"name": "t_concat"},
    "backends": [{"name": "t_linear", "hidden": 7}, {"name": "t_linear", "hidden": 4}],
    "head": {"name": "t_classifier", "num_classes": 3},
}


def test_sizes_and_rates_are_wired_by_the_assembler(tiny_components):
    model = assemble(AV)
    assert isinstance(model, AVModel) and model.task == "classification"
    assert model.modalities == ["video", "audio"]
    assert model.fusion.input_dims == {"video": 8, "audio": 5}
    # audio: 100 frames/s, stride 4 -> 25/s, the same as video
    assert model.fusion.input_rates == {"video": 25.0, "audio": 25.0}
    assert [b.input_dim for b in model.backends] == [13, 7]
    assert model.head.input_dim == 4 and model.head.proj.in_features == 4


def test_forward_runs_on_a_batch_dict(tiny_components):
    model = build_model({"model": AV}).eval()
    batch = {
        "video": torch.randn(2, 10, 3, 6, 6), "video_lengths": torch.tensor([10, 6]),
        "audio": torch.randn(2, 40, 4), "audio_lengths": torch.tensor([40, 24]),
    }
    out = model(batch)
    assert out["log_probs"].shape == (2, 3)
    assert torch.allclose(out["log_probs"].exp().sum(-1), torch.ones(2))
    # a padded frame does not change the result: lengths reach the head
    padded = dict(batch, video=batch["video"].clone(), audio=batch["audio"].clone())
    padded["video"][1, 6:] = 100.0
    padded["audio"][1, 24:] = 100.0
    assert torch.allclose(model(padded)["log_probs"][1], out["log_probs"][1])
    with pytest.raises(ValueError, match=r"none of this model's inputs \['video', 'audio'\]"):
        model({"text": torch.zeros(1)})


def test_single_encoder_feeds_the_backend_directly(tiny_components):
    model = assemble({"encoders": {"audio": {"name": "t_audio", "width": 9}},
                      "head": {"name": "t_classifier", "num_classes": 2}})
    assert model.fusion is None and len(model.backends) == 0 and model.head.input_dim == 9
    with pytest.raises(ValueError, match="2 encoders .* need a fusion"):
        assemble({k: v for k, v in AV.items() if k != "fusion"})


def test_constructor_error_propagates_with_a_note_naming_the_recipe_path(tiny_components):
    spec = dict(AV, backends=[{"name": "t_linear"}, {"name": "t_linear", "hidden": -1}])
    with pytest.raises(RuntimeError, match="negative dimension") as err:
        assemble(spec)
    # the original exception, not a wrapper: its own type, message and traceback
    assert type(err.value) is RuntimeError and err.value.__cause__ is None
    assert err.value.__notes__ == ["while building backend 't_linear' at recipe key 'model.backends.1'"]


def test_build_model_validates_first(tiny_components):
    from avtoolkit.recipe import RecipeError

    with pytest.raises(RecipeError, match="model.head.num_clases: unexpected argument"):
        build_model({"model": AV}, ["model.head.num_clases=4"])
