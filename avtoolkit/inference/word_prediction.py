"""Word predictions for a raw video: mouth found by face detection, top-k words of a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from avtoolkit.data import video as T


@torch.no_grad()
def predict_rois(model: nn.Module, vocabulary: Sequence[str], rois: np.ndarray, top: int = 5,
                 crop_size: int = 88) -> list[tuple[str, float]]:
    """Top-``top`` words with probabilities for one clip's uint8 mouth ROIs ``[T, H, W]``.

    The word boundary, when the model reads one, marks every frame: a raw video has no
    ``Duration`` metadata, so the whole clip is taken as the word.
    """
    video = T.normalise(T.center_crop(torch.from_numpy(np.ascontiguousarray(rois)), crop_size))[None]
    device = next(model.parameters()).device
    batch = {"video": video.to(device), "video_lengths": torch.tensor([video.shape[1]], device=device),
             "word_boundary": torch.ones(1, video.shape[1], device=device)}
    model.eval()
    probs = model(batch)["log_probs"][0].exp()
    values, indices = probs.topk(min(top, len(vocabulary)))
    return [(vocabulary[int(i)], float(v)) for v, i in zip(values, indices)]


def predict_words(checkpoint: str | Path, video: str | Path, top: int = 5, method: str = "face",
                  device: str = "cpu") -> list[tuple[str, float]]:
    """Top-``top`` words with probabilities for a video file (what ``avtoolkit predict`` prints).

    Args:
        checkpoint: a word-classification run's ``best.ckpt``.
        video: any video OpenCV decodes, showing one talking face.
        top: how many words.
        method: mouth cropping: ``"face"`` (OpenCV face detector, default) or ``"fixed"``
            (LRW's mouth box, for clips already in LRW's face-centred framing).
        device: where to run the model.

    Raises:
        MediaError: the video cannot be decoded or no face is found.
        CheckpointError: the checkpoint is not an avtoolkit run's, or not a word classifier.
    """
    from avtoolkit.data.media import read_video
    from avtoolkit.roi import MouthCropper
    from avtoolkit.models.checkpoint import load_model

    loaded = load_model(checkpoint, device=device, command="predict")
    frames, _ = read_video(video, color="gray")
    rois = MouthCropper(size=(96, 96), method=method).crop(frames, source=video)
    crop_size = int((loaded.recipe.get("data") or {}).get("crop_size", 88))
    return predict_rois(loaded.model, loaded.vocabulary, rois, top, crop_size)
