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
``targets``            long ``[B, S]``                        token ids, padded with 0 (CTC)
``target_lengths``     long ``[B]``                           valid target tokens (CTC)
``ids``                ``list[str]``                          example ids (file stems)
``texts``              ``list[str]``                          reference transcripts / words
``sources``            ``list[str]``                          ``manifest:line`` (manifests) or clip file (GRID) of each example
=====================  =====================================  ================================

The datasets themselves (``LightningDataModule`` subclasses registered as ``dataset``
components) share the base class :class:`avtoolkit.datasets.base.AVDataModule`.
"""

from __future__ import annotations

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
