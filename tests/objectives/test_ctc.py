"""The ``ctc`` objective on tiny tensors: loss, metrics, monitor, prediction rows, test decoder."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.objectives import objective_class
from avtoolkit.objectives._transcripts import greedy_ctc, references
from avtoolkit.objectives.ctc import CTC


def _spell(text: str, frames_per_char: int = 2) -> list[int]:
    """Frame labels: each character for two frames with a blank (0) between characters."""
    ids = CharVocab().encode(text)
    return [t for i in ids for t in [i] * frames_per_char + [0]]


def _out(texts: list[str]) -> dict[str, torch.Tensor]:
    labels = [_spell(t) for t in texts]
    frames = max(map(len, labels))
    logits = torch.full((len(texts), frames, len(CHARACTERS)), -4.0)
    for b, row in enumerate(labels):
        for t, i in enumerate(row):
            logits[b, t, i] = 4.0
    return {"log_probs": torch.log_softmax(logits, -1), "lengths": torch.tensor([len(x) for x in labels])}


def _batch(texts: list[str]) -> dict:
    ids = [CharVocab().encode(t) for t in texts]
    targets = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
    for b, row in enumerate(ids):
        targets[b, : len(row)] = torch.tensor(row)
    return {"targets": targets, "target_lengths": torch.tensor([len(r) for r in ids]), "ids": [f"u{i}" for i in range(len(ids))]}


def test_the_registered_name_is_the_head_task_and_the_defaults_are_wer_min() -> None:
    assert objective_class("ctc") is CTC
    assert CTC.monitor == ("val/wer", "min")
    assert list(CTC.outputs) == ["log_probs", "lengths"]
    assert CTC.outputs["log_probs"] == {0: "batch", 1: "frames"} and CTC.outputs["lengths"] == {0: "batch"}
    assert "transcribe" in CTC.commands and "noise-eval" in CTC.commands and "avtoolkit transcribe" in CTC.usage


def test_loss_is_torch_ctc_loss_on_time_major_float_log_probs() -> None:
    out, batch = _out(["bin", "at"]), _batch(["bin", "at"])
    expected = F.ctc_loss(out["log_probs"].transpose(0, 1), batch["targets"], out["lengths"], batch["target_lengths"],
                          blank=0, reduction="mean", zero_infinity=True)
    assert float(CTC(CHARACTERS).loss(out, batch)) == pytest.approx(float(expected))
    assert CTC(CHARACTERS).loss({**out, "log_probs": out["log_probs"].half()}, batch).dtype == torch.float32


def test_zero_infinity_comes_from_the_loss_section() -> None:
    out = _out(["a"])  # 3 frames cannot hold "bin blue" (8 characters): an impossible alignment
    batch = _batch(["bin blue"])
    assert float(CTC(CHARACTERS).loss(out, batch)) == 0.0
    assert math.isinf(float(CTC(CHARACTERS, {"zero_infinity": False}).loss(out, batch)))


def test_evaluate_scores_greedy_transcripts_and_writes_rows() -> None:
    objective = CTC(CHARACTERS)
    out, batch = _out(["bin blue", "at f"]), _batch(["bin blue", "at e"])
    rows: list = []
    logged = objective.evaluate(out, batch, "val", rows)
    assert [(x.name, x.prog_bar) for x in logged] == [("wer", True), ("cer", False)]
    assert logged[0].metric is objective.wer["val"] and logged[1].metric is objective.cer["val"]
    assert float(objective.wer["val"].compute()) == pytest.approx(1 / 4)  # one word of four
    assert float(objective.cer["val"].compute()) == pytest.approx(1 / 12)  # one character of twelve
    assert [(r["id"], r["reference"], r["prediction"]) for r in rows] == [("u0", "bin blue", "bin blue"),
                                                                         ("u1", "at e", "at f")]
    _, scores = greedy_ctc(out["log_probs"], out["lengths"], objective.vocab)
    assert [r["score"] for r in rows] == [round(s, 6) for s in scores] and all(s < 0 for s in scores)


def test_an_empty_output_scores_minus_infinity() -> None:
    out = _out(["a"])
    texts, scores = greedy_ctc(out["log_probs"], torch.tensor([0]), CharVocab())
    assert texts == [""] and scores == [float("-inf")]


def test_references_prefer_the_batch_texts() -> None:
    batch = _batch(["bin", "at"])
    assert references(batch, CharVocab()) == ["bin", "at"]
    assert references({**batch, "texts": ["Bin", "At"]}, CharVocab()) == ["Bin", "At"]


def test_the_test_decoder_replaces_greedy_at_test_only() -> None:
    objective = CTC(CHARACTERS)
    objective.prepare_test({"name": "greedy"})
    assert objective.test_decoder is None
    calls = []

    def decoder(log_probs, lengths):
        calls.append(log_probs.device.type)
        return ["lay" for _ in lengths]

    objective.test_decoder = decoder
    out, batch = _out(["bin"]), _batch(["bin"])
    rows: list = []
    objective.evaluate(out, batch, "val", rows)
    assert rows[-1]["prediction"] == "bin" and not calls
    objective.evaluate(out, batch, "test", rows)
    assert rows[-1]["prediction"] == "lay" and calls == ["cpu"]
    objective.prepare_test({"name": "beam", "beam_size": 2})
    assert objective.test_decoder is decoder  # one set by the caller is kept


def test_prepare_test_builds_the_recipes_beam_decoder() -> None:
    pytest.importorskip("torchaudio")
    objective = CTC(CHARACTERS)
    objective.prepare_test({"name": "beam", "beam_size": 4})
    out = _out(["bin"])
    assert objective.test_decoder is not None
    assert objective.test_decoder(out["log_probs"], out["lengths"]) == ["bin"]
