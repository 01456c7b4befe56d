"""The ``hybrid`` objective: its loss, and a tiny model that learns six GRID sentences end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from avtoolkit.data.grid_grammar import GRID_SLOTS
from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.decoding.grammar import in_grammar
from avtoolkit.models.heads.hybrid import HybridCTCAttentionHead
from avtoolkit.objectives import objective_class
from avtoolkit.objectives.ctc import CTC  # noqa: E402
from avtoolkit.objectives.hybrid import Hybrid, attention_targets, smoothed_attention_loss

SENTENCES = ["bin blue at f two now", "lay red by c seven again", "place green in a one soon",
             "set white with p nine please", "bin red at l zero soon", "lay blue in t four now"]


def _batch(texts: list[str], frames: int = 36, dim: int = 16) -> dict:
    ids = [CharVocab().encode(t) for t in texts]
    targets = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for b, row in enumerate(ids):
        targets[b, : len(row)] = torch.tensor(row)
    gen = torch.Generator().manual_seed(7)
    return {"audio": torch.randn(len(texts), frames, dim, generator=gen),
            "audio_lengths": torch.full((len(texts),), frames), "targets": targets,
            "target_lengths": torch.tensor([len(r) for r in ids]), "texts": list(texts),
            "ids": [f"u{i}" for i in range(len(texts))]}


class _Tiny(nn.Module):
    """A GRU encoder and the hybrid head: the smallest model with the recipe model's ``head``."""

    task = "hybrid"

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.rnn = nn.GRU(dim, 48, batch_first=True, bidirectional=True)
        self.head = HybridCTCAttentionHead(96, layers=1, heads=2, dim=64, ff_dim=128, decoder_dropout=0.0)

    def forward(self, batch: dict) -> dict:
        x, _ = self.rnn(batch["audio"])
        return self.head(x, batch["audio_lengths"], batch)


def test_registered_as_the_head_task_with_ctc_outputs_and_commands() -> None:
    assert objective_class("hybrid") is Hybrid and HybridCTCAttentionHead.task == "hybrid"
    assert Hybrid.monitor == ("val/wer", "min") and Hybrid.outputs == CTC.outputs
    assert {"transcribe", "noise-eval"} <= set(Hybrid.commands)
    assert "PyTorch checkpoint" in Hybrid.export_note
    with pytest.raises(ValueError, match="ctc_weight"):
        Hybrid(CHARACTERS, {"ctc_weight": 1.5})


def test_loss_weights_ctc_and_the_smoothed_attention_cross_entropy() -> None:
    torch.manual_seed(0)
    batch = _batch(SENTENCES[:2])
    out = _Tiny().eval()(batch)
    targets = attention_targets(batch["targets"], batch["target_lengths"])
    assert targets.shape == (2, batch["targets"].shape[1] + 1)
    assert targets[0, len(SENTENCES[0])] == 0 and (targets[1, len(SENTENCES[1]) + 1:] == -100).all()
    out = {k: v.detach() for k, v in out.items()}
    ctc = F.ctc_loss(out["log_probs"].transpose(0, 1), batch["targets"], out["lengths"], batch["target_lengths"],
                     zero_infinity=True)
    valid = targets != -100
    ce = F.nll_loss(out["att_log_probs"][valid], targets[valid])
    assert float(Hybrid(CHARACTERS, {"ctc_weight": 0.3}).loss(out, batch)) == pytest.approx(
        float(0.3 * ctc + 0.7 * ce), rel=1e-5)
    assert float(Hybrid(CHARACTERS, {"ctc_weight": 1.0}).loss(out, batch)) == pytest.approx(float(ctc), rel=1e-5)
    smooth = smoothed_attention_loss(out["att_log_probs"], targets, 0.1)
    assert float(Hybrid(CHARACTERS, {"ctc_weight": 0.0, "label_smoothing": 0.1}).loss(out, batch)) == \
        pytest.approx(float(smooth), rel=1e-6)


def test_a_tiny_model_learns_six_sentences_and_every_decoder_returns_them() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: one thread is as fast here, and never stalls a neighbour
    try:
        _learn_six_sentences()
    finally:
        torch.set_num_threads(threads)


def _learn_six_sentences() -> None:
    from avtoolkit.decoding.joint_search import AttentionGreedyDecoder

    torch.manual_seed(0)
    model, batch = _Tiny(), _batch(SENTENCES, frames=30)
    objective = Hybrid(CHARACTERS, {"ctc_weight": 0.3, "label_smoothing": 0.0})
    objective.attach(model)
    assert "model" not in dict(objective.named_modules()) and not objective.state_dict()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(1, 601):  # about 300 steps, 10 s on one thread
        loss = objective.training_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0:
            model.eval()
            with torch.no_grad():
                out = model(batch)
            model.train()
            if AttentionGreedyDecoder(model.head, CHARACTERS)(out) == SENTENCES:
                break
    assert losses[-1] < losses[0] / 20
    model.eval()
    with torch.no_grad():
        out = model(batch)
    rows: list[dict] = []
    logged = objective.evaluate(out, batch, "val", rows)  # greedy attention
    assert [r["prediction"] for r in rows] == SENTENCES and float(logged[0].metric.compute()) == 0.0
    joint = Hybrid.build_decoder({"name": "joint", "beam_size": 5, "ctc_weight": 0.3, "grammar": "grid"},
                                 CHARACTERS, model)
    texts = joint(out)
    assert texts == SENTENCES and all(in_grammar(t, tuple(GRID_SLOTS.values())) for t in texts)
    assert Hybrid.build_decoder({"name": "joint", "beam_size": 5, "ctc_weight": 0.3}, CHARACTERS, model)(out) == \
        SENTENCES  # unconstrained
    objective.prepare_test({"name": "joint", "beam_size": 3})
    rows = []
    objective.evaluate(out, batch, "test", rows)
    assert [r["prediction"] for r in rows] == SENTENCES and all(r["score"] <= 0 for r in rows)


def test_validation_also_scores_the_ctc_branch_greedily_and_test_does_not() -> None:
    # A CTC branch that spells the sentence exactly (one frame per character, blanks between) beside
    # an untrained attention decoder: ctc_cer is 0 while the attention CER is not.
    torch.manual_seed(0)
    model, batch = _Tiny(), _batch(SENTENCES[:2], frames=60)
    objective = Hybrid(CHARACTERS, {"ctc_weight": 0.3})
    objective.attach(model)
    model.eval()
    with torch.no_grad():
        out = dict(model(batch))
    log_probs = torch.full((2, 60, len(CHARACTERS)), -30.0)
    log_probs[:, :, 0] = 0.0
    for b, text in enumerate(SENTENCES[:2]):
        for i, token in enumerate(CharVocab().encode(text)):
            log_probs[b, 2 * i, 0], log_probs[b, 2 * i, token] = -30.0, 0.0
    out["log_probs"], out["lengths"] = log_probs, torch.full((2,), 60)
    logged = {item.name: float(item.metric.compute()) for item in objective.evaluate(out, batch, "val")}
    assert logged["ctc_cer"] == 0.0 and logged["ctc_wer"] == 0.0 and logged["cer"] > 0.2
    assert [item.name for item in objective.evaluate(out, batch, "test")] == ["wer", "cer"]
