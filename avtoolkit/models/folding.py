"""BatchNorm folded into the convolution before it, for the evaluation forward pass.

In evaluation a BatchNorm is a fixed per-channel affine map, so ``norm(conv(x))`` equals one
convolution with rescaled weights and a bias: one pass over the (small) weights instead of a
full pass over the (large) activations. :class:`ConvNormAct` does that on every evaluation
call without autograd, and runs the layers as written otherwise (training, or evaluation
with gradients, where the norm's parameters must receive them), so checkpoints, training and
``state_dict`` keys are exactly those of ``nn.Sequential(conv, norm, act)``.

The folded weights are cached between evaluation calls (recomputing them costs about 5 ms
per ``lrw_effv2t`` forward, 8% of a batch-1 clip). The cache is dropped by ``train()`` /
``eval()`` and recomputed whenever any of the six tensors it comes from is replaced or changed
in place through autograd-visible ops (``optimizer.step()``, ``load_state_dict``, ``copy_``
under ``torch.no_grad()``: their version counters move). Edits through ``tensor.data`` do not
move version counters; after such an edit call ``model.eval()`` again.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_norm(weight: Tensor, bias: Tensor | None, norm: nn.Module) -> tuple[Tensor, Tensor]:
    """The weight and bias of ``norm(layer(x))`` as one layer (``norm`` in evaluation).

    Args:
        weight: the producing layer's weight, output channels first.
        bias: its bias, or ``None``.
        norm: a BatchNorm with running statistics.

    Examples:
        >>> conv, bn = nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3).eval()
        >>> _ = bn.running_mean.fill_(0.5)
        >>> w, b = fold_norm(conv.weight, conv.bias, bn)
        >>> x = torch.randn(1, 2, 4, 4)
        >>> bool(torch.allclose(nn.functional.conv2d(x, w, b), bn(conv(x)), atol=1e-6))
        True
    """
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    new_bias = shift if bias is None else bias * scale + shift
    return weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), new_bias


class FastInference:
    """Mixin for modules with a cheaper inference route to the same values.

    :meth:`inference_call` says when to take it: evaluation mode, no autograd, not being traced
    or exported (training, evaluation with gradients such as saliency maps, and ONNX export run
    the layers as written). ``fast_inference = False`` on an instance, or
    :func:`set_fast_inference` on a model, turns the route off: the reference numerics, and
    the "before" path the benchmark times.
    """

    fast_inference: bool = True
    training: bool

    def inference_call(self) -> bool:
        return self.fast_inference and not (self.training or torch.is_grad_enabled()
                                             or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export())


def set_fast_inference(model: nn.Module, enabled: bool) -> int:
    """Turns every :class:`FastInference` module's inference route in ``model`` on or off.

    Returns how many modules were set.

    Examples:
        >>> block = ConvNormAct(nn.Conv2d(3, 8, 1, bias=False), nn.BatchNorm2d(8))
        >>> set_fast_inference(nn.Sequential(block, block), False), block.fast_inference
        (1, False)
    """
    count = 0
    for module in model.modules():
        if isinstance(module, FastInference):
            module.fast_inference = enabled
            count += 1
    return count


class ConvNormAct(FastInference, nn.Sequential):
    """``conv -> BatchNorm -> activation`` whose evaluation forward folds the norm into the conv.

    Evaluation without autograd (``model.eval()`` under ``torch.no_grad()`` or
    ``torch.inference_mode()``: what ``avtoolkit eval``, the transcriber and validation run)
    computes one convolution with folded weights laid out channels-last, the layout oneDNN's
    depthwise and 1x1 kernels are fastest in. The result equals the unfolded layers up to
    float rounding. ``fast_inference = False`` (or :func:`set_fast_inference`) runs the
    layers as written.

    Args:
        conv: a ``Conv2d`` or ``Conv3d`` (not transposed).
        norm: the BatchNorm that normalises its output.
        act: the activation, or ``None``.

    Examples:
        >>> block = ConvNormAct(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.SiLU()).eval()
        >>> x = torch.randn(2, 3, 16, 16)
        >>> with torch.no_grad():
        ...     folded = block(x)
        ...     _ = set_fast_inference(block, False)
        ...     plain = block(x)
        >>> bool(torch.allclose(folded, plain, atol=1e-5))
        True
    """

    _fold_cache: tuple[tuple[object, ...], Tensor, Tensor] | None = None

    def __init__(self, conv: nn.Conv2d | nn.Conv3d, norm: nn.Module, act: nn.Module | None = None) -> None:
        if not isinstance(conv, (nn.Conv2d, nn.Conv3d)) or not isinstance(norm, _NORMS):
            raise TypeError(f"ConvNormAct needs a Conv2d/Conv3d and a BatchNorm, got "
                            f"{type(conv).__name__} and {type(norm).__name__}")
        super().__init__(conv, norm, *([act] if act is not None else []))

    def folds(self) -> bool:
        """Whether this call runs folded: evaluation, no autograd, not being exported.

        An ONNX export traces the layers as written (ONNX Runtime folds norms itself), so the
        exported graph does not depend on this optimisation.
        """
        norm = self[1]  # a tool that fused the norm itself may have put an nn.Identity here
        return (isinstance(norm, _NORMS) and norm.running_mean is not None and norm.running_var is not None
                and self.inference_call())

    def forward(self, x: Tensor) -> Tensor:
        if not self.folds():
            return super().forward(x)
        weight, bias = self.folded()
        y = self[0]._conv_forward(x, weight, bias)
        return self[2](y) if len(self) > 2 else y

    def folded(self) -> tuple[Tensor, Tensor]:
        """The folded weight (channels-last for a 2D conv) and bias, cached while unchanged."""
        conv, norm = self[0], self[1]
        device = conv.weight.device.type
        # Under autocast the conv would cast the (non-leaf) folded weight on every call;
        # cache it in the autocast dtype instead.
        cast = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        key = _state_key((conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var))
        key = None if key is None else key + (cast,)
        if self._fold_cache is not None and key is not None and self._fold_cache[0] == key:
            return self._fold_cache[1], self._fold_cache[2]
        weight, bias = fold_norm(conv.weight, conv.bias, norm)
        if cast is not None:
            weight, bias = weight.to(cast), bias.to(cast)
        if weight.dim() == 4:
            # Channels-last weights make oneDNN run this conv, and everything after it that
            # keeps the layout (activations, residual adds), channels-last.
            weight = weight.contiguous(memory_format=torch.channels_last)
        self._fold_cache = None if key is None else (key, weight, bias)
        return weight, bias

    def train(self, mode: bool = True) -> "ConvNormAct":
        self._fold_cache = None
        return super().train(mode)


def _state_key(tensors: tuple[Tensor | None, ...]) -> tuple[object, ...] | None:
    """What identifies these tensors' values: storage, version, dtype, device (None: uncacheable).

    Tensors created under ``torch.inference_mode()`` have no version counter: never cached.
    """
    try:
        return tuple(None if t is None else (t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
    except RuntimeError:
        return None
