"""A hybrid CTC/attention model through Transcriber and ONNX export (encoder + CTC graph only)."""

from __future__ import annotations

import pytest
import torch

from avtoolkit import build_model
from avtoolkit.data.text import CHARACTERS
from avtoolkit.decoding.joint_search import JointDecoder
from avtoolkit.errors import UsageError
from avtoolkit.inference.export import export_onnx
from avtoolkit.inference.runtime import OnnxModel
from avtoolkit.inference.transcriber import Transcriber

SMALL = ["model.encoders.audio={name: audio_cnn, channels: [8, 8, 8], hidden_dim: 32, time_subsampling: 1}",
         "model.backends=[]", "model.head={name: hybrid_ctc_attention, layers: 1, heads: 2, dim: 32, ff_dim: 64}"]


def test_a_hybrid_model_exports_its_ctc_graph_and_says_joint_decoding_needs_pytorch(tmp_path) -> None:
    from avtoolkit.recipe import load_recipe

    torch.manual_seed(0)
    recipe = load_recipe("recipes/grid_audio_hybrid.yaml", SMALL).tree
    model = build_model(recipe).eval()
    assert model.task == "hybrid"
    example = {"audio": torch.randn(2, 60, 40), "audio_lengths": torch.tensor([60, 44])}
    assert export_onnx(model, example, tmp_path / "h.onnx", list(CHARACTERS), recipe=recipe) <= 1e-4
    graph = OnnxModel(tmp_path / "h.onnx")
    assert graph.info.task == "hybrid" and "PyTorch checkpoint" in graph.info.note
    # the PyTorch model decodes jointly, constrained to GRID's grammar (the recipe's decoding)
    asr = Transcriber(model, CHARACTERS, ["audio"], recipe)
    assert isinstance(asr.decode, JointDecoder) and asr.decode.constraint is not None
    wave = torch.randn(16000).numpy() * 0.1
    text = asr.transcribe(audio=wave).transcript
    assert text == "" or len(text.split()) == 6
    # the graph: CTC decoders only, and the same greedy transcript as PyTorch's CTC branch
    with pytest.raises(UsageError, match="PyTorch checkpoint"):
        Transcriber.from_onnx(tmp_path / "h.onnx")
    onnx_asr = Transcriber.from_onnx(tmp_path / "h.onnx", decoding={"name": "greedy"})
    greedy = Transcriber(model, CHARACTERS, ["audio"], recipe, decoding={"name": "greedy"})
    assert onnx_asr.transcribe(audio=wave).transcript == greedy.transcribe(audio=wave).transcript
