"""The batch contract: the dicts every registered dataset's dataloaders yield.

A batch dict has these keys (only those the task needs):

=====================  =====================================  ================================
key                    shape / type                           meaning
=====================  =====================================  ================================
``video``              float ``[B, T, C, H, W]``              normalised mouth ROIs
``video_lengths``      long ``[B]``                           valid video frames
``audio``              float ``[B, T, n_mels]``               log-mel frames (100 per second)
``audio_lengths``      long ``[B]``                           valid audio frames
``word_boundary``      float ``[B, T]``                       1 inside the word (LRW), else 0
``label``              long ``[B]``                           class index (classification)
``targets``            long ``[B, S]``                        token ids, padded with 0 (CTC; a language
                                                              model's: the next tokens, then the end 0)
``target_lengths``     long ``[B]``                           valid target tokens (CTC)
``text``               long ``[B, L]``                        a language model's input: start token 0,
                                                              then the token ids (item key ``text_ids``)
``text_lengths``       long ``[B]``                           valid input tokens
``ids``                ``list[str]``                          example ids (file stems)
``texts``              ``list[str]``                          reference transcripts / words
``sources``            ``list[str]``                          ``manifest:line`` (manifests) or clip file (GRID) of each example
=====================  =====================================  ================================

The datasets themselves (``LightningDataModule`` subclasses registered as ``dataset``
components) share the base class :class:`avtoolkit.datasets.base.AVDataModule`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


#: ``data`` settings that decide what the model's inputs look like. A run writes each into the
#: recipe it saves (the dataset's default when the recipe left it out), so inference from a
#: checkpoint or an ONNX file crops and sizes its inputs as training did without looking the
#: dataset up (which would import every dataset, and Lightning with them).
INPUT_SETTINGS = ("video_size", "crop_method")


def pad_sequences(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-pads ``[T_i, ...]`` tensors into ``[B, max T_i, ...]``, with the lengths ``[B]``.

    The ``<key>`` / ``<key>_lengths`` pair of a batch dict.

    Examples:
        >>> padded, lengths = pad_sequences([torch.ones(3, 2), torch.ones(1, 2)])
        >>> tuple(padded.shape), lengths.tolist(), padded[1, :, 0].tolist()
        ((2, 3, 2), [3, 1], [1.0, 0.0, 0.0])
    """
    lengths = torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)
    return pad_sequence(seqs, batch_first=True), lengths


def collate(items: list[dict[str, Any]], word_boundary: bool = True) -> dict[str, Any]:
    """Pads a list of dataset items into a batch dict: the one collate function of every dataset.

    Each key an item has becomes its batch key: ``id``/``text``/``source`` the lists ``ids``,
    ``texts``, ``sources``; ``targets``, ``audio`` and ``video`` padded with their ``*_lengths``;
    ``word_boundary`` padded (left out with ``word_boundary=False``, for heads that do not read
    it); ``label`` a long tensor. Items of one batch have the same keys.

    Examples:
        >>> a = {"video": torch.ones(3, 1, 2, 2), "label": 0, "word_boundary": torch.ones(3), "id": "a", "text": "A"}
        >>> b = {"video": torch.ones(2, 1, 2, 2), "label": 1, "word_boundary": torch.ones(2), "id": "b", "text": "B"}
        >>> batch = collate([a, b])
        >>> tuple(batch["video"].shape), batch["video_lengths"].tolist(), batch["word_boundary"][1].tolist()
        ((2, 3, 1, 2, 2), [3, 2], [1.0, 1.0, 0.0])
        >>> sorted(batch), "word_boundary" in collate([a, b], word_boundary=False)
        (['ids', 'label', 'texts', 'video', 'video_lengths', 'word_boundary'], False)
    """
    first = items[0]
    batch: dict[str, Any] = {"ids": [i["id"] for i in items], "texts": [i["text"] for i in items]}
    if "source" in first:
        batch["sources"] = [i["source"] for i in items]
    if "label" in first:
        batch["label"] = torch.tensor([i["label"] for i in items], dtype=torch.long)
    if "targets" in first:
        batch["targets"], batch["target_lengths"] = pad_sequences([i["targets"] for i in items])
    if word_boundary and "word_boundary" in first:
        batch["word_boundary"], _ = pad_sequences([i["word_boundary"] for i in items])
    for key in ("audio", "video"):
        if key in first:
            batch[key], batch[f"{key}_lengths"] = pad_sequences([i[key] for i in items])
    if "text_ids" in first:  # not "text": that item key is the reference string
        batch["text"], batch["text_lengths"] = pad_sequences([i["text_ids"] for i in items])
    return batch
