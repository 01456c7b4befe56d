"""Memory layout for training: convolution weights in channels-last order.

oneDNN (CPU) and cuDNN (GPU) run convolutions fastest with channels innermost (NHWC / NDHWC).
A convolution whose weight is channels-last returns a channels-last output, so converting the
weights once makes the whole convolutional stack run in that layout, forward and backward,
with no change to the values computed beyond float rounding order. On this project's CPU it
made the ``lrw_effv2t`` bf16 training step 1.34x faster (docs/benchmarks.md).
"""

from __future__ import annotations

import torch
from torch import nn


def to_channels_last(model: nn.Module) -> int:
    """Puts every 4-D and 5-D parameter of ``model`` in channels-last layout, in place.

    Parameters are kept (their ``.data`` changes layout), so an optimizer built before or
    after sees the same objects, and ``state_dict`` values compare equal to the NCHW ones.

    Returns:
        How many parameters were converted.

    Examples:
        >>> conv = nn.Conv2d(3, 8, 3)
        >>> to_channels_last(conv)
        1
        >>> conv.weight.is_contiguous(memory_format=torch.channels_last)
        True
    """
    converted = 0
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 4:
                param.data = param.data.contiguous(memory_format=torch.channels_last)
            elif param.dim() == 5:
                param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
            else:
                continue
            converted += 1
    return converted
