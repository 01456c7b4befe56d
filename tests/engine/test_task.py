"""``AVTask.training_step`` on one toy batch: what the model sees and which loss comes back."""

from __future__ import annotations

from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import toy
from avtoolkit.engine.task import AVTask
from avtoolkit.models.assemble import assemble


def _task(mixup_alpha: float) -> tuple[AVTask, list[dict[str, Any]]]:
    """A toy word task whose model records every batch it is called with."""
    recipe = toy.words_recipe(loss={"mixup_alpha": mixup_alpha})
    model_cfg = {**recipe["model"], "head": {"name": "word_classifier", "num_classes": len(toy.WORDS)}}
    model = assemble(model_cfg)
    seen: list[dict[str, Any]] = []
    model.register_forward_pre_hook(lambda _module, args: seen.append(args[0]))
    task = AVTask(model, recipe, toy.WORDS)
    task.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                             enable_checkpointing=False, enable_model_summary=False)
    task.log = lambda *args, **kwargs: None  # self.log needs a running loop; the loss is what is tested here
    return task, seen


def _batch() -> dict[str, Any]:
    data = toy.ToyWords(batch_size=8, sizes=[8, 0, 0], seed=1)
    batch = next(iter(data.train_dataloader()))
    # Different lengths per example, so the mixed lengths can be checked.
    batch["video"][1, 4:] = 0.0
    batch["video_lengths"][1] = 4
    return batch


def _solve_mix(mixed: torch.Tensor, video: torch.Tensor) -> tuple[float, list[int]]:
    """``lam`` and ``perm`` with ``mixed[b] = lam * video[b] + (1 - lam) * video[perm[b]]`` (least squares)."""
    lams, perm = [], []
    for b in range(video.shape[0]):
        if torch.allclose(mixed[b], video[b], atol=1e-5):
            perm.append(b)  # the shuffle left this example in place: mixed with itself, any lambda
            continue
        best = None
        for j in range(video.shape[0]):
            d = (video[b] - video[j]).flatten()
            if j == b or d.norm() == 0:
                continue
            lam = float(((mixed[b] - video[j]).flatten() @ d) / (d @ d))
            err = float((mixed[b] - lam * video[b] - (1 - lam) * video[j]).norm())
            if best is None or err < best[0]:
                best = (err, lam, j)
        assert best is not None and best[0] < 1e-4, f"example {b} is not a mix of two examples"
        lams.append(best[1])
        perm.append(best[2])
    assert lams and max(lams) - min(lams) < 1e-5, f"one lambda per batch expected, got {lams}"
    return lams[0], perm


def test_mixup_trains_on_mixed_inputs_with_the_mixed_loss(toy_components):
    task, seen = _task(mixup_alpha=1.0)
    batch = _batch()
    torch.manual_seed(5)
    loss = task.training_step(batch, 0)
    assert len(seen) == 1
    mixed = seen[0]
    assert not torch.equal(mixed["video"], batch["video"])
    lam, perm = _solve_mix(mixed["video"], batch["video"])
    assert 0.05 < lam < 0.95  # a real mix at this seed, not one of the two inputs
    assert sorted(perm) == list(range(8)) and perm != list(range(8))  # a shuffle of the batch
    lengths = batch["video_lengths"]
    assert mixed["video_lengths"].tolist() == torch.maximum(lengths, lengths[perm]).tolist()
    with torch.no_grad():
        log_probs = task.model(mixed)["log_probs"]
    label = batch["label"]
    expected = lam * F.nll_loss(log_probs, label) + (1 - lam) * F.nll_loss(log_probs, label[perm])
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-4)
    assert float(loss.detach()) != pytest.approx(float(F.nll_loss(log_probs, label)), rel=1e-3)  # both targets count
    loss.backward()  # the mixed loss reaches the weights
    assert task.model.encoders["video"].proj.weight.grad.abs().sum() > 0


def test_without_mixup_the_model_sees_the_batch_itself(toy_components):
    task, seen = _task(mixup_alpha=0.0)
    batch = _batch()
    loss = task.training_step(batch, 0).detach()
    assert seen[0] is batch
    with torch.no_grad():
        plain = F.nll_loss(task.model(batch)["log_probs"], batch["label"])
    assert float(loss) == pytest.approx(float(plain), rel=1e-5)


def test_a_head_task_without_an_objective_names_the_registered_ones(toy_components):
    recipe = toy.words_recipe()
    model = assemble({**recipe["model"], "head": {"name": "word_classifier", "num_classes": len(toy.WORDS)}})
    model.head.task = "seq2seq"
    with pytest.raises(ValueError, match=r"head task 'seq2seq' is not one of the registered objectives \(classification, ctc"):
        AVTask(model, recipe, toy.WORDS)


def test_the_objective_owns_the_metrics_and_none_is_saved_in_the_state_dict(toy_components):
    task, _ = _task(mixup_alpha=0.0)
    assert type(task.objective).__name__ == "Classification" and (task.monitor, task.monitor_mode) == ("val/acc", "max")
    assert all(k.startswith("model.") for k in task.state_dict())  # checkpoints keep the keys they had
