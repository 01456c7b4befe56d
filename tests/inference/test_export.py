"""``export_onnx`` and ``OnnxModel``: parity with PyTorch for CTC and word-classifier models."""

from __future__ import annotations

import pytest
import torch

from avtoolkit import build_model
from avtoolkit.data.text import CHARACTERS
from avtoolkit.inference.export import export_onnx
from avtoolkit.inference.runtime import OnnxModel


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


TINY_LRW = {"model": {
    "encoders": {"video": {"name": "effnetv2_3d", "size": "t", "width": 0.25, "depth": 0.2,
                           "head_features": 64, "output_dim": 32}},
    "backends": [{"name": "tcn", "channels": 32, "layers": 2}],
    "head": {"name": "word_classifier", "num_classes": 5, "use_word_boundary": True},
}}


def _lrw_batch(b: int, frames: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(b, frames, 1, 44, 44, generator=gen),
            "video_lengths": torch.tensor([frames, frames - 2][:b]),
            "word_boundary": (torch.rand(b, frames, generator=gen) > 0.5).float()}


def test_word_classifier_exports_with_its_boundary_input_and_runs_at_other_sizes(tmp_path):
    from avtoolkit.inference.transcriber import Transcriber

    torch.manual_seed(0)
    model = build_model(TINY_LRW).train()
    diff = export_onnx(model, _lrw_batch(2, 7, 0), tmp_path / "lrw.onnx", [f"w{i}" for i in range(5)],
                       extra_inputs=["word_boundary"])
    assert diff <= 1e-4
    assert not model.training, "exporting must leave the model in evaluation mode"
    runner = OnnxModel(tmp_path / "lrw.onnx", threads=2)
    assert runner.session.get_session_options().intra_op_num_threads == 2
    assert runner.task == "classification" and runner.extra_inputs == ["word_boundary"]
    batch = _lrw_batch(1, 9, 3)
    with torch.no_grad():
        want = model(batch)["log_probs"]
    got = runner(batch)
    assert set(got) == {"log_probs"} and got["log_probs"].shape == want.shape == (1, 5)
    assert torch.allclose(want, got["log_probs"], atol=1e-4)
    with pytest.raises(ValueError, match="Transcriber needs a CTC model"):
        Transcriber.from_onnx(tmp_path / "lrw.onnx")


def test_onnx_inputs_at_different_rates_get_their_own_time_axis(tmp_path):
    # Audio (100 Hz) and video (25 fps) differ in length; one shared symbolic name made ONNX
    # Runtime plan buffers as if they were equal (a warning per run, and slower runs).
    import onnx

    model = build_model("recipes/avasr.yaml", ["model.encoders.video.channels=[4, 4, 4]",
                                               "model.encoders.video.hidden_dim=16"]).eval()
    batch = {"audio": torch.randn(1, 80, 40), "audio_lengths": torch.tensor([80]),
             "video": torch.randn(1, 20, 1, 32, 32), "video_lengths": torch.tensor([20])}
    export_onnx(model, batch, tmp_path / "m.onnx", list(CHARACTERS))
    graph = onnx.load(str(tmp_path / "m.onnx"))
    time_axes = {i.name: i.type.tensor_type.shape.dim[1].dim_param for i in graph.graph.input if i.name in batch
                 and not i.name.endswith("_lengths")}
    assert time_axes == {"audio": "audio_time", "video": "video_time"}
    out = OnnxModel(tmp_path / "m.onnx")(batch)["log_probs"]
    with torch.no_grad():
        assert torch.allclose(out, model(batch)["log_probs"], atol=1e-4)


def test_the_graph_outputs_come_from_the_objective_and_a_task_without_them_is_refused():
    from avtoolkit.inference.export import export_outputs
    from avtoolkit.objectives import Objective
    from avtoolkit.registry import OBJECTIVES

    assert export_outputs("classification") == {"log_probs": {0: "batch"}}
    assert list(export_outputs("ctc")) == ["log_probs", "lengths"]

    class NoExport(Objective):
        """Trains, but its models have no graph."""

        monitor = ("val/loss", "min")

    with OBJECTIVES.temporary("no_export", NoExport):
        with pytest.raises(ValueError, match=r"export supports classification, ctc and hybrid models; this model's task is 'no_export'"):
            export_outputs("no_export")
    with pytest.raises(ValueError, match="this model's task is 'seq2seq'"):
        export_outputs("seq2seq")
