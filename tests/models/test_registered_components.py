"""Every registered model component builds with its defaults and honours the model contract.

Parametrized over the registries' own listings (as timm tests every registered model), so
a new component, built-in or installed plugin, is tested by being registered.
"""

from __future__ import annotations

import inspect

import pytest
import torch

from avtoolkit.models.contract import Backend, Encoder, Fusion, Head
from avtoolkit.registry import registry_for

BATCH = 2
LENGTHS = torch.tensor([8, 5])  # frames at 25 fps; the second clip is padded
DIM = 12


def _names(kind: str) -> list[str]:
    return registry_for(kind).names()


def _build(kind: str, name: str, **injected):
    cls = registry_for(kind).get(name)
    params = inspect.signature(cls).parameters
    required = [p for p, v in params.items() if v.default is inspect.Parameter.empty
                and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL) and p not in injected]
    assert not required, f"{kind} '{name}' has required arguments {required}: a recipe could not omit them"
    return cls(**{k: v for k, v in injected.items() if k in params}).eval()


def _sequence(dim: int = DIM, time: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(BATCH, time, dim), LENGTHS.clone()


@pytest.mark.parametrize("name", _names("encoder"))
def test_encoder_turns_its_modality_into_a_sequence_with_lengths(name: str):
    encoder = _build("encoder", name)
    assert isinstance(encoder, Encoder)
    seconds = 8 / 25
    frames = round(seconds * encoder.input_rate)
    lengths = (LENGTHS * encoder.input_rate / 25).round().long()
    params = inspect.signature(type(encoder)).parameters
    if encoder.modality == "text":  # token ids (a language model's input)
        x = torch.randint(0, getattr(encoder, "vocab_size", 2), (BATCH, frames))
    elif encoder.modality == "video":
        channels = params["in_channels"].default if "in_channels" in params else 1  # grayscale-only encoders
        x = torch.rand(BATCH, frames, channels, 32, 32)
    elif "n_mels" in params:
        x = torch.randn(BATCH, frames, params["n_mels"].default)
    else:  # a raw-waveform encoder (auto_avsr_audio): samples at its input rate
        x = torch.randn(BATCH, frames)
    with torch.no_grad():
        y, out_lengths = encoder(x, lengths)
    assert out_lengths.tolist() == encoder.output_lengths(lengths).tolist()
    assert y.shape == (BATCH, int(out_lengths.max()), encoder.output_dim)
    assert y.shape[1] == pytest.approx(seconds * encoder.output_rate, abs=1)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", _names("fusion"))
def test_fusion_joins_two_streams_into_one_at_its_rate(name: str):
    dims, rates = {"video": 6, "audio": 10}, {"video": 25.0, "audio": 50.0}
    fusion = _build("fusion", name, input_dims=dims, input_rates=rates)
    assert isinstance(fusion, Fusion)
    streams = {"video": _sequence(6, 8), "audio": (torch.randn(BATCH, 16, 10), LENGTHS * 2)}
    with torch.no_grad():
        y, lengths = fusion(streams)
    assert y.shape[0] == BATCH and y.shape[2] == fusion.output_dim
    assert y.shape[1] == pytest.approx(8 / 25 * fusion.output_rate, abs=1)
    assert lengths.shape == (BATCH,) and int(lengths.max()) <= y.shape[1]
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", _names("backend"))
def test_backend_maps_a_sequence_to_a_sequence(name: str):
    backend = _build("backend", name, input_dim=DIM)
    assert isinstance(backend, Backend)
    x, lengths = _sequence()
    with torch.no_grad():
        y, out_lengths = backend(x, lengths)
    assert y.shape == (BATCH, 8, backend.output_dim)
    assert out_lengths.tolist() == LENGTHS.tolist()
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", _names("head"))
def test_head_outputs_log_probabilities_for_its_task(name: str):
    head = _build("head", name, input_dim=DIM)
    assert isinstance(head, Head)
    x, lengths = _sequence()
    with torch.no_grad():
        out = head(x, lengths, {})
    log_probs = out["log_probs"]
    from avtoolkit.objectives import objective_class

    # per frame (ctc, hybrid) or per token (language_model): the output carries its lengths
    if "lengths" in (objective_class(head.task).outputs or {}) or "lengths" in out:
        assert log_probs.shape[:2] == (BATCH, 8)
        assert out["lengths"].tolist() == LENGTHS.tolist()
    else:
        assert log_probs.dim() == 2 and log_probs.shape[0] == BATCH
    # log-softmax over the classes / tokens
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:-1]), atol=1e-4)
