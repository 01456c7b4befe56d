"""Tiny synthetic datasets and a frame encoder for engine tests (importable by subprocesses).

``toy_words``: each word class has a fixed random 8x8 mouth pattern; an example is that
pattern plus noise on every frame, so a linear model learns it in a few epochs.
``toy_spelling``: a GRID-like phrase is shown one character pattern per two frames (with a
blank frame between characters) for CTC.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from avtoolkit.datasets.base import AVDataModule
from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.models.contract import Encoder
from avtoolkit.registry import registry_for

WORDS = ["about", "after", "again", "black", "green", "place"]
PHRASES = ["bin blue", "lay red", "set white", "place green", "at f two", "now", "again", "soon"]


class ToyFrames(Encoder):
    """Flattens each frame and projects it; ``nan_after_steps`` poisons training outputs.

    With ``norm`` a BatchNorm follows the poisoning, so its running statistics go NaN as a
    real network's do when its activations overflow.
    """

    modality = "video"

    def __init__(self, dim: int = 16, size: int = 8, nan_after_steps: int | None = None, norm: bool = False) -> None:
        super().__init__()
        self.output_dim = dim
        self.proj = nn.Linear(size * size, dim)
        self.norm = nn.BatchNorm1d(dim) if norm else None
        self.nan_after_steps = nan_after_steps
        self.calls = 0

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        y = torch.tanh(self.proj(x.flatten(2)))
        if self.training and self.nan_after_steps is not None:
            self.calls += 1
            if self.calls > self.nan_after_steps:
                y = y * float("nan")
        if self.norm is not None:
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        return y, lengths


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    batch: dict[str, Any] = {"ids": [i["id"] for i in items], "texts": [i["text"] for i in items]}
    t = max(i["video"].shape[0] for i in items)
    video = torch.zeros(len(items), t, *items[0]["video"].shape[1:])
    for b, i in enumerate(items):
        video[b, : i["video"].shape[0]] = i["video"]
    batch["video"] = video
    batch["video_lengths"] = torch.tensor([i["video"].shape[0] for i in items])
    if "label" in items[0]:
        batch["label"] = torch.tensor([i["label"] for i in items])
    else:
        s = max(len(i["targets"]) for i in items)
        targets = torch.zeros(len(items), s, dtype=torch.long)
        for b, i in enumerate(items):
            targets[b, : len(i["targets"])] = torch.tensor(i["targets"])
        batch["targets"] = targets
        batch["target_lengths"] = torch.tensor([len(i["targets"]) for i in items])
    return batch


class _ToyData(AVDataModule):
    def __init__(self, batch_size: int = 8, sizes: list[int] = [48, 16, 16], seed: int = 0, noise: float = 0.5) -> None:
        super().__init__()
        self.batch_size = batch_size
        g = torch.Generator().manual_seed(seed)
        self.templates = torch.randn(len(self.vocabulary), 1, 8, 8, generator=g)
        self.splits = {name: [self.example(f"{name}{k:03d}", g, noise) for k in range(n)]
                       for name, n in zip(("train", "val", "test"), sizes)}

    def example(self, ident: str, g: torch.Generator, noise: float) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def _loader(self, split: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(self.splits[split], batch_size=self.batch_size, shuffle=shuffle, collate_fn=_collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


class ToyWords(_ToyData):
    """Word classification: class pattern plus noise on 6 frames."""

    vocabulary = WORDS

    def example(self, ident: str, g: torch.Generator, noise: float) -> dict[str, Any]:
        label = int(torch.randint(len(self.vocabulary), (1,), generator=g))  # subclasses may shrink it
        video = self.templates[label].expand(6, 1, 8, 8) + noise * torch.randn(6, 1, 8, 8, generator=g)
        return {"id": ident, "text": self.vocabulary[label], "label": label, "video": video}


class ToySpelling(_ToyData):
    """CTC: two frames per character, one blank (zero) frame between characters."""

    vocabulary = CHARACTERS

    def example(self, ident: str, g: torch.Generator, noise: float) -> dict[str, Any]:
        text = PHRASES[int(torch.randint(len(PHRASES), (1,), generator=g))]
        ids = CharVocab().encode(text)
        frames = []
        for i in ids:
            frames += [self.templates[i], self.templates[i], torch.zeros(1, 8, 8)]
        video = torch.stack(frames) + 0.1 * noise * torch.randn(len(frames), 1, 8, 8, generator=g)
        return {"id": ident, "text": text, "targets": ids, "video": video}


class _Augmented(torch.utils.data.Dataset):
    """Adds fresh noise to every frame each time an item is read, drawn from the global RNG of the
    process reading it (a loader worker's, seeded by torch and Lightning), as noise augmentation does."""

    def __init__(self, items: list[dict[str, Any]], amount: float) -> None:
        self.items, self.amount = items, amount

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.items[i])
        item["video"] = item["video"] + self.amount * torch.randn(item["video"].shape)
        return item


class ToyAugmentedWords(ToyWords):
    """``toy_words`` whose training items get random noise when read, by ``workers`` loader processes."""

    def __init__(self, batch_size: int = 8, sizes: list[int] = [48, 16, 16], seed: int = 0, noise: float = 0.5,
                 workers: int = 0, augment: float = 1.0) -> None:
        super().__init__(batch_size, sizes, seed, noise)
        self.workers, self.augment = workers, augment

    def train_dataloader(self) -> DataLoader:  # as the shipped datamodules build theirs
        return DataLoader(_Augmented(self.splits["train"], self.augment), batch_size=self.batch_size, shuffle=True,
                          collate_fn=_collate, num_workers=self.workers, persistent_workers=self.workers > 0)


class StopAfter(L.Callback):
    """Ends fit after ``epochs`` epochs, as an interruption would (last.ckpt already written)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


TOY = {("encoder", "toy_frames"): ToyFrames, ("dataset", "toy_words"): ToyWords,
       ("dataset", "toy_spelling"): ToySpelling, ("dataset", "toy_augmented_words"): ToyAugmentedWords}


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """The toy components, registered for the duration of a ``with`` block."""
    with contextlib.ExitStack() as stack:
        for (kind, name), obj in TOY.items():
            stack.enter_context(registry_for(kind).temporary(name, obj))
        yield


def words_recipe(**sections: Any) -> dict[str, Any]:
    """A toy word-classification recipe; keyword sections are merged in."""
    recipe: dict[str, Any] = {
        "name": "toy-words",
        "seed": 3,
        "model": {"encoders": {"video": {"name": "toy_frames"}}, "head": {"name": "word_classifier"}},
        "data": {"name": "toy_words"},
        "trainer": {"max_epochs": 3, "accelerator": "cpu", "devices": 1, "progress_bar": False,
                    "deterministic": True, "log_every_n_steps": 1},
        "optim": {"name": "adamw", "lr": 0.01},
        "schedule": {"name": "cosine", "warmup_epochs": 1},
        "logging": {"tensorboard": False},
    }
    for key, value in sections.items():
        recipe[key] = {**recipe.get(key, {}), **value} if isinstance(value, Mapping) else value
    return recipe


def spelling_recipe(**sections: Any) -> dict[str, Any]:
    """A toy CTC recipe."""
    recipe = words_recipe(**sections)
    recipe["name"] = "toy-spelling"
    recipe["model"] = {"encoders": {"video": {"name": "toy_frames", "dim": 32}}, "head": {"name": "ctc"}}
    recipe["data"] = {"name": "toy_spelling", **(sections.get("data") or {})}
    return recipe
