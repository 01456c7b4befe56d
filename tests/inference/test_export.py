"""``export_onnx``: parity with PyTorch for CTC models whatever their backend."""

from __future__ import annotations

import torch

from avtoolkit import build_model
from avtoolkit.data.text import CHARACTERS
from avtoolkit.inference.export import export_onnx
from avtoolkit.inference.onnx_runner import OnnxModel


def test_ctc_model_with_a_transformer_backend_exports_and_matches(tmp_path):
    # PyTorch's fused Transformer inference path has no ONNX mapping; export must avoid it.
    model = build_model("recipes/avasr_audio_only.yaml",
                        ["model.backends.0={name: transformer, layers: 1, heads: 4}"]).eval()
    example = {"audio": torch.randn(2, 120, 40), "audio_lengths": torch.tensor([120, 90])}
    diff = export_onnx(model, example, tmp_path / "m.onnx", list(CHARACTERS))
    assert diff <= 1e-4
    out = OnnxModel(tmp_path / "m.onnx")(example)
    with torch.no_grad():
        ref = model(example)
    assert out["lengths"].tolist() == ref["lengths"].tolist() == [30, 23]
    n = int(ref["lengths"][1])
    assert torch.allclose(out["log_probs"][1, :n], ref["log_probs"][1, :n], atol=1e-4)
    assert torch.backends.mha.get_fastpath_enabled()  # restored for the caller


def test_crops_whose_maps_do_not_divide_the_pool_export_exactly(tmp_path):
    # 48x48 crops (the demo recipe) leave 6x6 maps for a 4x4 adaptive pool: overlapping bins.
    model = build_model("recipes/avasr.yaml", ["model.encoders.video.channels=[8, 8, 8]",
                                               "model.encoders.video.hidden_dim=32"]).eval()
    example = {"audio": torch.randn(1, 120, 40), "audio_lengths": torch.tensor([120]),
               "video": torch.randn(1, 30, 1, 48, 48), "video_lengths": torch.tensor([30])}
    assert export_onnx(model, example, tmp_path / "m.onnx", list(CHARACTERS)) <= 1e-4
