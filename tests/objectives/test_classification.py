"""The ``classification`` objective on tiny tensors: loss, mixup, metrics, monitor, prediction rows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avtoolkit.objectives import objective_class
from avtoolkit.objectives.classification import Classification, smoothed_nll

WORDS = ["about", "bin", "blue", "green", "lay", "place", "red"]


def _log_probs() -> torch.Tensor:
    logits = torch.tensor([[3.0, 0.5, 0.2, 0.1, 0.0, -1.0, -2.0],   # about
                           [0.0, 0.1, 2.5, 0.3, 0.2, 0.1, 0.0],     # blue
                           [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])    # red, barely
    return torch.log_softmax(logits, -1)


def test_the_registered_name_is_the_head_task_and_the_defaults_are_accuracy_max() -> None:
    assert objective_class("classification") is Classification
    assert Classification.monitor == ("val/acc", "max")
    assert Classification.outputs == {"log_probs": {0: "batch"}}
    assert Classification.commands == ("predict",) and "avtoolkit predict" in Classification.usage


def test_loss_is_the_smoothed_nll_of_the_float_log_probs() -> None:
    lp, label = _log_probs(), torch.tensor([0, 2, 1])
    plain = Classification(WORDS)
    assert float(plain.loss({"log_probs": lp}, {"label": label})) == pytest.approx(float(F.nll_loss(lp, label)))
    smoothed = Classification(WORDS, {"label_smoothing": 0.2})
    by_hand = 0.8 * F.nll_loss(lp, label) + 0.2 * (-lp.mean(dim=-1)).mean()
    got = smoothed.loss({"log_probs": lp.half()}, {"label": label})
    assert got.dtype == torch.float32  # bf16/fp16 outputs are scored in float32
    assert float(got) == pytest.approx(float(smoothed_nll(lp.half().float(), label, 0.2)))
    assert float(smoothed.loss({"log_probs": lp}, {"label": label})) == pytest.approx(float(by_hand))


def test_without_mixup_training_runs_the_model_on_the_batch_itself() -> None:
    seen = []

    def model(batch):
        seen.append(batch)
        return {"log_probs": _log_probs()}

    batch = {"label": torch.tensor([0, 2, 1]), "video": torch.randn(3, 4, 1, 2, 2)}
    loss = Classification(WORDS).training_loss(model, batch)
    assert seen == [batch] and float(loss) == pytest.approx(float(F.nll_loss(_log_probs(), batch["label"])))


def test_mixup_mixes_inputs_and_lengths_with_one_lambda_and_both_targets() -> None:
    seen = []

    def model(batch):
        seen.append(batch)
        return {"log_probs": _log_probs()}

    video = torch.arange(3.0)[:, None].expand(3, 4).clone()
    batch = {"label": torch.tensor([0, 2, 1]), "video": video, "video_lengths": torch.tensor([4, 2, 3])}
    torch.manual_seed(0)
    loss = Classification(WORDS, {"mixup_alpha": 1.0}).training_loss(model, batch)
    mixed = seen[0]
    torch.manual_seed(0)
    lam = float(torch.distributions.Beta(1.0, 1.0).sample())
    perm = torch.randperm(3)
    assert torch.allclose(mixed["video"], lam * video + (1 - lam) * video[perm])
    assert mixed["video_lengths"].tolist() == torch.maximum(batch["video_lengths"], batch["video_lengths"][perm]).tolist()
    lp, label = _log_probs(), batch["label"]
    assert float(loss) == pytest.approx(float(lam * F.nll_loss(lp, label) + (1 - lam) * F.nll_loss(lp, label[perm])))


def test_evaluate_updates_top1_and_top5_of_its_stage_and_writes_rows() -> None:
    objective = Classification(WORDS)
    out = {"log_probs": _log_probs()}
    batch = {"label": torch.tensor([0, 2, 2]), "ids": ["a", "b", "c"]}
    rows: list = []
    logged = objective.evaluate(out, batch, "val", rows)
    assert [(x.name, x.prog_bar) for x in logged] == [("acc", True), ("acc_top5", False)]
    assert logged[0].metric is objective.acc["val"] and logged[1].metric is objective.acc5["val"]
    assert float(logged[0].metric.compute()) == pytest.approx(2 / 3)  # the third is wrong
    assert float(logged[1].metric.compute()) == pytest.approx(1.0)    # 'blue' is the third's 5th best
    assert objective.acc["test"].update_count == 0  # each stage has its own metric objects
    assert [r["prediction"] for r in rows] == ["about", "blue", "red"]
    assert [r["reference"] for r in rows] == ["about", "blue", "blue"] and [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["score"] == round(float(_log_probs()[0].max().exp()), 6)
    assert objective.evaluate(out, {"label": batch["label"]}, "test") and objective.acc["test"].update_count == 1


def test_top5_is_top_k_of_all_classes_when_there_are_fewer() -> None:
    objective = Classification(["yes", "no"])
    assert objective.acc5["val"].top_k == 2
