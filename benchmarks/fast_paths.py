"""Faster CPU inference paths for any recipe model, each checked against eager PyTorch.

What ``make bench`` puts side by side (``benchmarks/models.py``); the shipped inference path
is ONNX Runtime (:mod:`avtoolkit.inference`), which the benchmark measures beside these.
Every function here takes a model in evaluation mode and returns a *new* model (the
original is left untouched) or a runner with the same call signature, so a benchmark or a
user can put the paths side by side:

* :func:`fold_batchnorm`: BatchNorm folded into the convolution (or linear layer) that
  feeds it, found by running the model once, so it works for any component layout;
* :func:`to_channels_last`: 4-D / 5-D weights in channels-last layout, the layout oneDNN's
  depthwise and 1x1 convolution kernels are fastest in;
* :func:`convs_as_gemm`: 1x1 and temporal (``Conv1d``) convolutions as single GEMMs (MKL,
  no per-call weight re-layout, no slow reference kernels at batch 1);
* :func:`compile_model`: ``torch.compile`` (Inductor generates C++ for the CPU);
* :class:`BFloat16Model`: weights and activations in bfloat16 (native on AVX512-BF16 / AMX CPUs);
* :func:`quantize_linear_int8`: dynamic int8 quantisation of ``nn.Linear`` layers, with
  :func:`output_agreement` to state what it costs in accuracy.

Models take one batch dict (the :class:`~avtoolkit.models.AVModel` convention) and return a
dict with ``log_probs``.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> _ = net[1].running_mean.uniform_(-1, 1)
    >>> x = torch.randn(2, 1, 8, 8)
    >>> fast = fold_batchnorm(net, (x,))
    >>> type(fast[1]).__name__
    'Identity'
    >>> bool(torch.allclose(fast(x), net(x), atol=1e-5))
    True
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from avtoolkit.models.folding import fold_norm, set_fast_inference

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _first_tensor(output: Any) -> Tensor:
    """The tensor a model's output means: itself, or ``log_probs`` of a head dict."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, Mapping):
        return output["log_probs"]
    if isinstance(output, (tuple, list)):
        return output[0]
    raise TypeError(f"cannot compare model outputs of type {type(output).__name__}")


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _conv_bn_pairs(model: nn.Module, example: Sequence[Any]) -> list[tuple[str, str]]:
    """(producer, norm) module names where the norm's input IS the producer's output.

    Found by running the model once with hooks, not from the module tree: the order of
    attributes says nothing about data flow (a residual block may define ``bn`` before
    ``conv``), but tensor identity does. A pair counts only if it is the same pair on every
    call, so a shared or reused module is never folded.
    """
    names = {m: n for n, m in model.named_modules()}
    producer_of: dict[int, tuple[nn.Module, Tensor]] = {}
    seen: dict[str, set[str | None]] = {}
    handles = []

    def after_producer(module: nn.Module, _args: Any, output: Any) -> None:
        if isinstance(output, Tensor):
            producer_of[id(output)] = (module, output)

    def before_norm(module: nn.Module, args: Any) -> None:
        found = producer_of.get(id(args[0])) if args else None
        # Keep the tensor alive in ``producer_of`` so ids are never reused mid-run.
        source = names[found[0]] if found is not None and found[1] is args[0] else None
        seen.setdefault(names[module], set()).add(source)

    for module in model.modules():
        if isinstance(module, _CONVS) or isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(after_producer))
        elif isinstance(module, _NORMS):
            handles.append(module.register_forward_pre_hook(before_norm))
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for handle in handles:
            handle.remove()
    pairs = [(next(iter(srcs)), norm) for norm, srcs in seen.items() if len(srcs) == 1 and None not in srcs]
    producers = [p for p, _ in pairs]
    return [(p, n) for p, n in pairs if producers.count(p) == 1]


def _fold_into(producer: nn.Module, norm: nn.Module) -> bool:
    """Folds ``norm`` (eval statistics) into ``producer``'s weight and bias, in place."""
    if norm.running_mean is None or norm.running_var is None:
        return False  # batch statistics at inference time: nothing fixed to fold
    if isinstance(producer, _CONVS) and (producer.transposed if hasattr(producer, "transposed") else False):
        return False
    if isinstance(producer, nn.Linear) and not isinstance(norm, nn.BatchNorm1d):
        return False
    with torch.no_grad():
        weight, bias = fold_norm(producer.weight, producer.bias, norm)
        producer.weight.copy_(weight)
        if producer.bias is None:
            producer.bias = nn.Parameter(bias)
        else:
            producer.bias.copy_(bias)
    return True


def fold_batchnorm(model: nn.Module, example: Sequence[Any], atol: float = 1e-3) -> nn.Module:
    """A copy of ``model`` with every foldable BatchNorm merged into the layer feeding it.

    In evaluation a BatchNorm is a fixed per-channel affine map, so it can live inside the
    preceding convolution's weights; that removes one full pass over every activation.
    Not ``torch.fx.experimental.optimization.fuse``: it needs a symbolically traceable model
    and pairs modules by graph pattern, while these models branch on the batch dict.

    Args:
        model: the model (put in evaluation mode; it is not modified).
        example: the positional arguments of one forward call, e.g. ``(batch,)``.
        atol: largest allowed absolute difference of the output against ``model``.

    Returns:
        The folded copy, in evaluation mode; folded norms are replaced by ``nn.Identity``.

    Raises:
        AssertionError: the folded copy's output differs from ``model``'s by more than ``atol``
            (a norm whose input is also used elsewhere would do that).
    """
    model.eval()
    folded = copy.deepcopy(model).eval()
    set_fast_inference(folded, False)  # its layers as written, so the hooks see every pair
    for producer_name, norm_name in _conv_bn_pairs(folded, example):
        if _fold_into(folded.get_submodule(producer_name), folded.get_submodule(norm_name)):
            _set_submodule(folded, norm_name, nn.Identity())
    with torch.no_grad():
        want, got = _first_tensor(model(*example)), _first_tensor(folded(*example))
    diff = float((want - got).abs().max())
    if not diff <= atol:
        raise AssertionError(f"BatchNorm folding changed the output by {diff:.2e} (allowed {atol:.0e})")
    return folded


def count_batchnorms(model: nn.Module) -> int:
    """Number of BatchNorm layers left in ``model`` (what :func:`fold_batchnorm` removes)."""
    return sum(isinstance(m, _NORMS) for m in model.modules())


def to_channels_last(model: nn.Module) -> nn.Module:
    """A copy whose 4-D and 5-D weights use the channels-last memory layout.

    oneDNN then runs convolutions channels-last end to end (a depthwise 3x3 over NHWC reads
    contiguous channel vectors), and outputs stay channels-last until a reshape needs NCHW.
    """
    fast = copy.deepcopy(model).eval()
    for module in fast.modules():
        for name, param in list(module.named_parameters(recurse=False)):
            if param.dim() == 4:
                param.data = param.data.contiguous(memory_format=torch.channels_last)
            elif param.dim() == 5:
                param.data = param.data.contiguous(memory_format=torch.channels_last_3d)
    return fast


class PointwiseLinear(nn.Module):
    """A 1x1 ``Conv2d`` (stride 1, no padding, no groups) computed as a matmul over channels.

    Eager oneDNN convolutions re-lay out their weights on every call; a 1x1 convolution is a
    plain GEMM over the channel axis, which MKL runs on the weights as they are. The input is
    viewed as ``[N, H, W, C]`` (free for channels-last tensors) and the output comes back
    channels-last. This matters most for squeeze-excitation convs on ``[N, C, 1, 1]``, where
    the convolution's fixed cost dwarfs its arithmetic.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach().flatten(1).clone(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


class TemporalConvLinear(nn.Module):
    """A ``Conv1d`` (stride 1, no groups, zero padding) that runs as one GEMM where that is faster.

    PyTorch hands a batch-1 ``Conv1d`` with a small input (a TCN over 29 frames: at most
    20,480 values) to its slow reference kernels (``slow_conv_dilated2d`` when dilated)
    instead of oneDNN. For exactly those inputs, stacking the ``kernel_size`` shifted views
    gives ``[B, T, kernel * C]`` and one ``linear`` with the reshaped weight is the same
    convolution, 1.5-3x faster (measured on one core, 256 channels, kernel 3, 29 frames);
    larger inputs keep the oneDNN convolution, which is faster there.
    """

    #: PyTorch's own limit: batch-1 inputs up to this many values skip oneDNN.
    SMALL_INPUT = 20480
    #: profilers should time this module as one layer (its ``conv`` child runs only sometimes)
    profile_as_leaf = True

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.conv = conv
        out_ch, in_ch, k = conv.weight.shape
        self.kernel, self.dilation, self.padding = k, conv.dilation[0], int(conv.padding[0])
        # [O, C, k] -> [O, k * C], tap-major, matching the stacked input below.
        weight = conv.weight.detach().permute(0, 2, 1).reshape(out_ch, k * in_ch).clone()
        self.register_buffer("gemm_weight", weight, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] != 1 or x.numel() > self.SMALL_INPUT:
            return self.conv(x)
        padded = torch.nn.functional.pad(x, (self.padding, self.padding)).transpose(1, 2)  # [B, T', C]
        steps = padded.shape[1] - self.dilation * (self.kernel - 1)
        taps = [padded[:, j * self.dilation: j * self.dilation + steps] for j in range(self.kernel)]
        return torch.nn.functional.linear(torch.cat(taps, dim=-1), self.gemm_weight, self.conv.bias).transpose(1, 2)


def convs_as_gemm(model: nn.Module) -> nn.Module:
    """A copy with plain 1x1 ``Conv2d`` and ``Conv1d`` layers computed as GEMMs (same outputs).

    1x1 ``Conv2d`` (stride 1, no padding, no groups) becomes :class:`PointwiseLinear`;
    ``Conv1d`` (stride 1, no groups, zero padding given as a number) becomes
    :class:`TemporalConvLinear` (a GEMM only for the small batch-1 inputs where PyTorch
    would use its slow kernels). Everything else is left as it is.

    Examples:
        >>> import torch
        >>> net = nn.Sequential(nn.Conv2d(4, 6, 1), nn.Conv2d(6, 6, 3)).eval()
        >>> fast_net = convs_as_gemm(net)
        >>> type(fast_net[0]).__name__, type(fast_net[1]).__name__
        ('PointwiseLinear', 'Conv2d')
        >>> x = torch.randn(2, 4, 5, 5)
        >>> bool(torch.allclose(fast_net(x), net(x), atol=1e-5))
        True
        >>> tcn = nn.Conv1d(8, 8, 3, padding=2, dilation=2).eval()
        >>> y = torch.randn(1, 8, 29)
        >>> bool(torch.allclose(convs_as_gemm(tcn)(y), tcn(y), atol=1e-5))
        True
    """
    fast = copy.deepcopy(model).eval()
    for name, module in list(fast.named_modules()):
        replacement: nn.Module | None = None
        if (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride == (1, 1)
                and module.padding == (0, 0) and module.groups == 1):
            replacement = PointwiseLinear(module)
        elif (isinstance(module, nn.Conv1d) and module.stride == (1,) and module.groups == 1
              and module.padding_mode == "zeros" and not isinstance(module.padding, str)):
            replacement = TemporalConvLinear(module)
        if replacement is not None:
            if name:
                _set_submodule(fast, name, replacement)
            else:
                return replacement
    return fast


def optimize_for_cpu(model: nn.Module, example: Sequence[Any], bf16: bool = False) -> nn.Module:
    """The fastest fp32 PyTorch path here, in one call: folded BatchNorm, channels-last, convs as GEMMs.

    Args:
        model: the model (not modified).
        example: positional arguments of one forward call, e.g. ``(batch,)``.
        bf16: also run in bfloat16 (:class:`BFloat16Model`); worth it only where
            :func:`bf16_supported` is true, and it moves log-probabilities by ~1e-2.

    Returns:
        A new model with the same call signature and (in fp32) the same outputs to ~1e-5.
    """
    fast = convs_as_gemm(to_channels_last(fold_batchnorm(model, example)))
    return BFloat16Model(fast) if bf16 else fast


def compile_model(model: nn.Module, dynamic: bool = False) -> Callable[..., Any]:
    """``torch.compile`` with Inductor, frozen weights for inference.

    Args:
        model: the model in evaluation mode.
        dynamic: compile for varying batch and time sizes (slower code, fewer recompiles).

    Returns:
        The compiled callable; the first call compiles (tens of seconds on 2 cores).
    """
    # Freezing lets Inductor constant-fold weights (and BatchNorm) into the generated code.
    return torch.compile(model.eval(), dynamic=dynamic, options={"freezing": True})


def _float_outputs(out: Mapping[str, Any]) -> dict[str, Any]:
    """A bf16 model's output dict with its floating tensors back in float32."""
    return {k: v.float() if isinstance(v, Tensor) and v.is_floating_point() else v for k, v in out.items()}


class BFloat16Model(nn.Module):
    """Runs a copy of a batch-dict model in bfloat16; float inputs and outputs stay float32.

    On CPUs with AVX512-BF16 or AMX, oneDNN's bf16 convolutions and matmuls run about twice
    as fast as fp32 (and move half the bytes). bf16 keeps fp32's range with an 8-bit
    mantissa, so log-probabilities move by ~1e-2: check with :func:`output_agreement`.
    Not ``torch.autocast``: it re-casts the fp32 weights on every call and keeps some ops in fp32.

    Args:
        model: the model in evaluation mode (copied, not modified).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval().to(torch.bfloat16)

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        cast = {k: v.to(torch.bfloat16) if isinstance(v, Tensor) and v.is_floating_point() else v
                for k, v in batch.items()}
        out = self.model(cast)
        return _float_outputs(out)


class AutocastModel(nn.Module):
    """Runs a model under ``torch.autocast`` in bfloat16: what ``trainer.precision=bf16-mixed``
    evaluates with, and the "eager bf16" row beside fp32 eager (the model itself is shared).

    Args:
        model: the model in evaluation mode.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.model(batch)
        return _float_outputs(out)


def layers_as_written(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with the inference route of :mod:`avtoolkit.models.folding` off:
    the eager forward as it was before it (the "before" rows of the benchmark)."""
    plain = copy.deepcopy(model).eval()
    set_fast_inference(plain, False)
    return plain


def bf16_supported() -> bool:
    """Whether bf16 convolutions and matmuls run natively here (else bf16 is emulated and slower).

    The CPU's flags (AVX512-BF16, AMX-BF16, Arm BF16) and oneDNN's ``ONEDNN_MAX_CPU_ISA`` cap:
    capped to ``AVX2`` an AVX512-BF16 CPU runs the kernels an AVX2 CPU runs, bf16 emulated
    (:func:`avtoolkit.hardware.native_bf16_cpu`).
    """
    from avtoolkit.hardware import native_bf16_cpu

    return native_bf16_cpu()


class _WithoutTransformerFastPath(nn.Module):
    """Runs ``model`` with PyTorch's fused Transformer inference path switched off.

    That path reads ``linear1.weight.device``; on a dynamically quantised ``Linear``
    ``weight`` is a method, so the fused path would crash instead of falling back.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        enabled = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            return self.model(*args, **kwargs)
        finally:
            torch.backends.mha.set_fastpath_enabled(enabled)


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A copy with every ``nn.Linear`` dynamically quantised to int8 weights.

    Activations are quantised per batch at run time, so no calibration data is needed;
    check the cost with :func:`output_agreement` before shipping it.
    """
    from torch.ao.quantization import quantize_dynamic

    quantized = quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)
    if any(isinstance(m, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)) for m in quantized.modules()):
        return _WithoutTransformerFastPath(quantized)
    return quantized


@dataclass(frozen=True)
class Agreement:
    """How closely a fast path reproduces the reference model's outputs."""

    top1_agreement: float  #: fraction of predictions (per clip or per frame) that are the same
    max_abs_diff: float  #: largest absolute difference of log-probabilities
    mean_kl: float  #: mean KL(reference || fast) of the output distributions, in nats


def output_agreement(reference: Callable[..., Any], fast: Callable[..., Any],
                     examples: Sequence[Sequence[Any]]) -> Agreement:
    """Compares two models' log-probabilities on the same inputs.

    Args:
        reference: the eager model.
        fast: the faster path (a model or an :class:`~avtoolkit.inference.runtime.OnnxModel`).
        examples: positional-argument tuples, one per forward call.

    Returns:
        The :class:`Agreement` over all examples.
    """
    same = total = 0
    max_diff = kl_sum = 0.0
    with torch.no_grad():
        for args in examples:
            want = _first_tensor(reference(*args)).float()
            got = torch.as_tensor(_first_tensor(fast(*args))).float()
            same += int((want.argmax(-1) == got.argmax(-1)).sum())
            total += want.argmax(-1).numel()
            max_diff = max(max_diff, float((want - got).abs().max()))
            kl = (want.exp() * (want - got)).sum(-1)
            kl_sum += float(kl.sum())
    return Agreement(same / max(total, 1), max_diff, kl_sum / max(total, 1))
