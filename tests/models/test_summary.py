"""The one MAC counter (``count_macs``), pinned on a model small enough to count by hand."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from avtoolkit.models.assemble import AVModel
from avtoolkit.models.backends.transformer import TransformerBackend
from avtoolkit.models.contract import Encoder
from avtoolkit.models.heads.ctc import CTCHead
from avtoolkit.models.summary import count_macs, summarize_model

FRAMES, MELS, DIM, FF, HEADS = 10, 40, 16, 32, 2


class LinearAudio(Encoder):
    """One ``Linear(40, 16)`` per log-mel frame."""

    modality = "audio"
    input_rate = 100.0

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(MELS, DIM)
        self.output_dim = DIM

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.fc(x), lengths


def _model() -> AVModel:
    return AVModel({"audio": LinearAudio()}, None, [TransformerBackend(DIM, layers=1, heads=HEADS, ff_dim=FF)],
                   CTCHead(DIM))


def test_macs_of_each_part_are_the_hand_count() -> None:
    model = _model()
    vocab = model.head.proj.out_features
    # One Transformer layer per frame: Q, K, V and output projections (4 d^2), the two
    # feed-forward layers (2 d ff); per clip the attention scores Q K^T and the weighted sum
    # A V (T^2 d each, over all heads).
    transformer = FRAMES * (4 * DIM * DIM + 2 * DIM * FF) + 2 * FRAMES * FRAMES * DIM
    want = {"encoders.audio": FRAMES * MELS * DIM, "backends.0": transformer, "head": FRAMES * DIM * vocab}
    batch = {"audio": torch.zeros(1, FRAMES, MELS)}
    # Under no_grad PyTorch runs the Transformer layer as one fused kernel that the op
    # counter cannot see; the counter must not depend on the caller's grad mode.
    with torch.no_grad():
        assert count_macs(model.train(), batch) == want
    assert model.training, "the model's mode is restored"
    summary = summarize_model(model, batch, {"model.backends.0": "transformer"})
    assert [(r.path, r.name, r.macs) for r in summary.rows] == [
        ("model.encoders.audio", "LinearAudio", want["encoders.audio"]),
        ("model.backends.0", "transformer", transformer), ("model.head", "CTCHead", want["head"])]
    assert summary.macs == sum(want.values())
    assert summary.params == sum(p.numel() for p in model.parameters())


def test_a_batch_of_two_counts_twice_the_macs() -> None:
    model = _model()
    one = count_macs(model, {"audio": torch.zeros(1, FRAMES, MELS)})
    two = count_macs(model, {"audio": torch.zeros(2, FRAMES, MELS)})
    assert two == {part: 2 * macs for part, macs in one.items()}
