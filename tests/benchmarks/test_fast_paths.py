"""The benchmark's fast inference paths reproduce the eager model they were made from."""

from __future__ import annotations

import doctest
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from avtoolkit import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's ``benchmarks`` package
from benchmarks import fast_paths as fast  # noqa: E402

TINY_LRW = {"model": {
    "encoders": {"video": {"name": "effnetv2_3d", "size": "t", "width": 0.25, "depth": 0.2,
                           "head_features": 64, "output_dim": 32}},
    "backends": [{"name": "tcn", "channels": 32, "layers": 2}],
    "head": {"name": "word_classifier", "num_classes": 5},
}}


def _trained_looking(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics and affine terms, as after training (fresh ones fold to a no-op)."""
    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.2, generator=gen)
    return model.eval()


@pytest.fixture(scope="module")
def lrw_model() -> nn.Module:
    torch.manual_seed(0)
    return _trained_looking(build_model(TINY_LRW))


def _batch(b: int = 2, frames: int = 7, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(b, frames, 1, 44, 44, generator=gen),
            "video_lengths": torch.tensor([frames, frames - 2][:b])}


def test_fold_batchnorm_removes_every_norm_and_keeps_log_probs(lrw_model):
    batch = _batch()
    assert fast.count_batchnorms(lrw_model) > 10
    folded = fast.fold_batchnorm(lrw_model, (batch,))
    assert fast.count_batchnorms(folded) == 0
    assert fast.count_batchnorms(lrw_model) > 10, "the original model must not be modified"
    with torch.no_grad():
        want = lrw_model(_batch(seed=1))["log_probs"]
        got = folded(_batch(seed=1))["log_probs"]
    assert torch.allclose(want, got, atol=1e-4)


def test_fold_batchnorm_refuses_a_norm_whose_input_is_also_used_elsewhere():
    class Shared(nn.Module):  # the conv output feeds the norm AND the residual sum
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    model = _trained_looking(Shared())
    with pytest.raises(AssertionError, match="changed the output"):
        fast.fold_batchnorm(model, (torch.randn(1, 3, 8, 8),))


def test_channels_last_and_int8_paths_agree_with_eager(lrw_model):
    folded = fast.fold_batchnorm(lrw_model, (_batch(),))
    channels_last = fast.to_channels_last(folded)
    conv = next(m for m in channels_last.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    checks = [(_batch(seed=s),) for s in range(3)]
    same = fast.output_agreement(lrw_model, channels_last, checks)
    assert same.max_abs_diff < 1e-4 and same.top1_agreement == 1.0
    int8 = fast.quantize_linear_int8(channels_last)
    assert any("quantized" in type(m).__module__ for m in int8.modules())
    cost = fast.output_agreement(lrw_model, int8, checks)
    assert 0 < cost.max_abs_diff < 0.5, cost  # int8 weights change outputs, but only a little


def test_optimize_for_cpu_keeps_outputs_and_bf16_stays_close(lrw_model):
    optimized = fast.optimize_for_cpu(lrw_model, (_batch(),))
    kinds = {type(m).__name__ for m in optimized.modules()}
    assert {"PointwiseLinear", "TemporalConvLinear"} <= kinds and fast.count_batchnorms(optimized) == 0
    # batch 1 takes the GEMM branch of the temporal convs, batch 2 the convolution branch
    checks = [(_batch(seed=s),) for s in range(3)] + [(_batch(b=1, seed=4),)]
    assert fast.output_agreement(lrw_model, optimized, checks).max_abs_diff < 1e-4
    bf16 = fast.optimize_for_cpu(lrw_model, (_batch(),), bf16=True)
    assert next(bf16.parameters()).dtype == torch.bfloat16
    out = bf16(_batch(seed=1))["log_probs"]
    assert out.dtype == torch.float32  # callers get float32 back
    cost = fast.output_agreement(lrw_model, bf16, checks)
    assert cost.max_abs_diff < 0.3 and cost.top1_agreement >= 0.5, cost


def test_int8_quantised_transformer_runs_where_the_fused_path_would_crash():
    torch.manual_seed(0)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2,
                                    enable_nested_tensor=False).eval()
    int8 = fast.quantize_linear_int8(encoder)
    x = torch.randn(1, 5, 16)
    with torch.inference_mode():  # where PyTorch takes its fused Transformer path
        want, got = encoder(x), int8(x)
    assert got.shape == want.shape and 0 < float((got - want).abs().max()) < 0.2
    assert torch.backends.mha.get_fastpath_enabled(), "the switch must be restored"


def test_docstring_examples_run() -> None:
    # tests/test_docstring_examples.py covers avtoolkit only; this module moved out of it.
    result = doctest.testmod(fast, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0, result
