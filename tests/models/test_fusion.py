"""Fusions: frame-rate alignment, missing modalities, modality dropout, one training step each."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avtoolkit import build_model
from avtoolkit.data.text import CharVocab
from avtoolkit.registry.kinds import registry_for

FUSIONS = ["concat", "weighted", "attention", "adaptive"]


def _model(fusion: str, **fusion_args):
    torch.manual_seed(0)
    return build_model({"model": {
        "encoders": {"audio": {"name": "audio_cnn", "hidden_dim": 64, "channels": [8, 8, 8]},
                     "video": {"name": "video_cnn", "hidden_dim": 64, "channels": [8, 8, 8]}},
        "fusion": {"name": fusion, **fusion_args},
        "head": {"name": "ctc"}}})


def _batch(with_audio: bool = True, with_video: bool = True) -> dict:
    g = torch.Generator().manual_seed(1)
    vocab = CharVocab()
    texts = ["bin blue", "set red at"]
    batch = {"targets": torch.tensor([vocab.encode(t) + [0] * (10 - len(t)) for t in texts]),
             "target_lengths": torch.tensor([len(t) for t in texts])}
    if with_audio:
        batch |= {"audio": torch.randn(2, 120, 40, generator=g), "audio_lengths": torch.tensor([120, 96])}
    if with_video:
        batch |= {"video": torch.rand(2, 30, 1, 32, 32, generator=g), "video_lengths": torch.tensor([30, 24])}
    return batch


def test_every_builtin_fusion_is_registered() -> None:
    assert set(FUSIONS) <= set(registry_for("fusion").names())


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("present", [("audio", "video"), ("audio",), ("video",)])
def test_one_training_step(fusion: str, present: tuple[str, ...]) -> None:
    model = _model(fusion).train()
    batch = _batch("audio" in present, "video" in present)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = model(batch)
    assert out["log_probs"].shape == (2, 30, 29) and out["lengths"].tolist() == [30, 24]
    loss = F.ctc_loss(out["log_probs"].transpose(0, 1), batch["targets"], out["lengths"],
                      batch["target_lengths"], blank=0)
    assert torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
    moved = {k.split(".")[1] for k, v in model.named_parameters()
             if k.startswith("encoders.") and not torch.equal(v, before[k])}
    # Only the encoders of the modalities present learn anything.
    assert moved == set(present)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("fusion", FUSIONS)
def test_absent_modality_equals_a_zero_length_stream(fusion: str) -> None:
    """What an exported ONNX graph relies on: length 0 means "not there"."""
    model = _model(fusion).eval()
    audio_only = model(_batch(with_video=False))["log_probs"]
    batch = _batch()
    batch["video_lengths"] = torch.zeros(2, dtype=torch.long)
    zero_video = model(batch)["log_probs"]
    torch.testing.assert_close(zero_video, audio_only, atol=1e-5, rtol=1e-5)
    both = model(_batch())["log_probs"]
    assert (both - audio_only).abs().max() > 1e-3  # the video does change the output


def test_streams_at_different_rates_are_aligned() -> None:
    torch.manual_seed(0)
    # Audio kept at 100 Hz (no time subsampling), video at 25 fps, fused at 50 Hz.
    model = build_model({"model": {
        "encoders": {"audio": {"name": "audio_cnn", "time_subsampling": 0, "hidden_dim": 32},
                     "video": {"name": "video_cnn", "hidden_dim": 32}},
        "fusion": {"name": "adaptive", "rate": 50.0, "dim": 32},
        "head": {"name": "ctc"}}}).eval()
    assert model.fusion.output_rate == 50.0
    out = model({"audio": torch.randn(1, 300, 40), "audio_lengths": torch.tensor([300]),
                 "video": torch.rand(1, 70, 1, 64, 64), "video_lengths": torch.tensor([70])})
    # 3 s of audio -> 150 frames at 50 Hz; the 2.8 s of video -> 140 frames, audio only after.
    assert out["lengths"].tolist() == [150] and out["log_probs"].shape[1] == 150
    gate = model.fusion.gate_weights[0]
    assert torch.allclose(gate[140:, 0], torch.ones(10)) and (gate[:140, 1] > 0).all()


def test_modality_dropout_only_in_training() -> None:
    model = _model("weighted", modality_dropout=0.9)
    eval_out = [model.eval()(_batch())["log_probs"] for _ in range(2)]
    torch.testing.assert_close(eval_out[0], eval_out[1])
    with pytest.raises(ValueError, match="modality_dropout"):
        _model("concat", modality_dropout=1.0)


def test_weighted_fusion_renormalises_over_present_modalities() -> None:
    model = _model("weighted").eval()
    with torch.no_grad():
        model.fusion.logits.copy_(torch.tensor([2.0, 0.0]))
    w = model.fusion.modality_weights()
    assert w["audio"] > 0.85 and abs(w["audio"] + w["video"] - 1) < 1e-3
    # Video alone is not scaled down by its small learned weight.
    x = torch.ones(1, 4, 64)
    y, _ = model.fusion({"video": (x, torch.tensor([4]))})
    torch.testing.assert_close(y, model.fusion.proj["video"](x))


def test_unknown_stream_is_an_error() -> None:
    model = _model("concat").eval()
    with pytest.raises(ValueError, match="lips"):
        model.fusion({"lips": (torch.ones(1, 4, 64), torch.tensor([4]))})


RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("avasr*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_avasr_recipes_stay_under_5m_parameters(recipe: Path) -> None:
    model = build_model(recipe).eval()
    params = sum(p.numel() for p in model.parameters())
    assert params < 5_000_000, f"{recipe.name}: {params:,} parameters"
    batch = {"audio": torch.randn(1, 300, 40), "video": torch.rand(1, 75, 1, 64, 64)}
    out = model({k: v for k, v in batch.items() if k in model.modalities})
    assert out["log_probs"].shape == (1, 75, 29)


def test_avasr_recipe_family() -> None:
    assert {p.stem for p in RECIPES} >= {"avasr", "avasr_concat", "avasr_weighted", "avasr_attention",
                                          "avasr_audio_only", "avasr_video_only"}
