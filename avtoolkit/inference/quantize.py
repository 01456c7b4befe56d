"""Static int8 quantisation of exported ONNX graphs, and what it costs in accuracy.

ONNX Runtime runs int8 convolutions and matmuls with the CPU's integer dot-product
instructions (AVX512-VNNI / AVX-VNNI), up to four times the multiply-accumulates per
instruction of fp32. For the AV-ASR model, whose time is mostly 3x3 convolutions over every
video frame, that halves the latency of a 5 s clip (``make bench`` reports both paths).

The scheme is static QDQ: weights int8 per output channel, activations uint8 with ranges
measured once on calibration inputs (real utterances, not random tensors: the ranges are
what decides accuracy). :func:`avtoolkit.inference.deploy.quantize_export` does the whole
job for an exported CTC graph and reports the WER and CER of both graphs on held-out
utterances, so the cost is stated, not guessed.

Weights are 7-bit (``reduce_range``: integers in [-64, 64]) so that the graph computes the
same on every x86-64 CPU. Without VNNI (AVX2 CPUs, AVX-512 before Cascade Lake / Zen 4),
ONNX Runtime's uint8 x int8 kernels multiply with ``vpmaddubsw``, which adds two products
into a *saturating* int16: with 8-bit weights a pair can reach 2 * 255 * 127 = 64770 and is
clipped to 32767 (a user's AVX2 machine measured int8 outputs 28% off fp32, and a GRID
model's CER going from 0.7% to 22%). With 7-bit weights a pair is at most 2 * 255 * 64 =
32640, so no kernel can saturate, the integer sums are exact on every CPU, and the accuracy
measured on one machine holds on all of them. :func:`u8s8_pair_bound` checks that on the
written graph, and the bound is recorded in the graph's metadata.

Examples:
    >>> import numpy as np, onnx, tempfile, torch
    >>> from pathlib import Path
    >>> from avtoolkit.inference.export import trace_to_onnx
    >>> folder = tempfile.TemporaryDirectory()
    >>> tmp = Path(folder.name)
    >>> net = torch.nn.Sequential(torch.nn.Conv1d(4, 8, 3, padding=1), torch.nn.ReLU()).eval()
    >>> _ = trace_to_onnx(net, (torch.randn(1, 4, 20),), tmp / "fp32.onnx", ["x"], ["y"], {"x": {2: "t"}})
    >>> calibration = [{"x": np.random.randn(1, 4, 20).astype(np.float32)} for _ in range(4)]
    >>> path = quantize_onnx_int8(tmp / "fp32.onnx", tmp / "int8.onnx", calibration)
    >>> sorted({n.op_type for n in onnx.load(str(path)).graph.node} & {"QuantizeLinear", "DequantizeLinear"})
    ['DequantizeLinear', 'QuantizeLinear']
    >>> u8s8_pair_bound(onnx.load(str(path)))["max_pair_sum"] <= 32767  # no saturation on any x86 kernel
    True
    >>> folder.cleanup()
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from avtoolkit.atomic import atomic_write
from avtoolkit.errors import AvtoolkitError
from avtoolkit.quiet import quieter

#: metadata key saying how a graph was quantised (absent on fp32 graphs).
QUANT_META_KEY = "avtoolkit.quantization"

#: The ops that run in int8: where the multiply-accumulates are. Quantising everything
#: (ONNX Runtime's default) also rounds the fusion gates, padding masks and residual sums
#: to 8 bits: on a small model trained on the six GRID clips that raised CER from 1.5% to
#: 35%, while these three alone left it at 1.5% (measured once; the slow GRID test in
#: tests/inference/test_transcriber.py checks int8 stays within 5 CER points of fp32).
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")

#: the largest int16 value: ``vpmaddubsw`` (uint8 x int8 pairs, the AVX2 kernels) clips there.
INT16_MAX = 32767


class QuantizationError(AvtoolkitError, ValueError):
    """An int8 graph that would compute wrongly on some CPUs (or not accurately enough): not written."""


def u8s8_pair_bound(proto: Any) -> dict[str, Any]:
    """The largest sum of two uint8 x int8 products any kernel could form in a QDQ graph.

    Every weight a ``DequantizeLinear`` reads as an int8 initializer is a matrix operand of
    ONNX Runtime's u8s8 kernels; every activation must be uint8 (0..255) for the bound to
    hold. ``vpmaddubsw`` (AVX2, and AVX-512 without VNNI) adds two such products into a
    saturating int16, so ``max_pair_sum <= 32767`` means no x86-64 kernel can clip a sum:
    the integer arithmetic is exact, and the same, on every CPU.

    Args:
        proto: a loaded ``onnx.ModelProto``.

    Returns:
        ``{"weight_range": [lowest, highest] (None without int8 weights), "max_pair_sum",
        "activation_types": sorted element types of the activations' zero points,
        "saturation_free": bool}``.

    Examples:
        >>> import numpy as np
        >>> from onnx import helper, numpy_helper
        >>> w = numpy_helper.from_array(np.array([[-64, 64], [3, -7]], np.int8), "w")
        >>> s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
        >>> graph = helper.make_graph([helper.make_node("DequantizeLinear", ["w", "s"], ["wf"])], "g", [],
        ...                           [helper.make_tensor_value_info("wf", 1, [2, 2])], [w, s])
        >>> u8s8_pair_bound(helper.make_model(graph))
        {'weight_range': [-64, 64], 'max_pair_sum': 32640, 'activation_types': [], 'saturation_free': True}
    """
    from onnx import TensorProto, numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    low = high = None
    activation_types: set[str] = set()
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            tensor = inits[node.input[0]]
            if tensor.data_type == TensorProto.INT8:
                values = numpy_helper.to_array(tensor)
                if values.size:
                    low = int(values.min()) if low is None else min(low, int(values.min()))
                    high = int(values.max()) if high is None else max(high, int(values.max()))
        elif node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            activation_types.add(TensorProto.DataType.Name(inits[node.input[2]].data_type))
    magnitude = max(abs(low), abs(high)) if low is not None else 0
    bound = 2 * 255 * magnitude
    return {"weight_range": None if low is None else [low, high], "max_pair_sum": bound,
            "activation_types": sorted(activation_types),
            "saturation_free": bound <= INT16_MAX and activation_types <= {"UINT8"}}


class _Calibration:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over an iterable of feed dicts."""

    def __init__(self, feeds: Iterable[Mapping[str, np.ndarray]], input_names: Sequence[str]) -> None:
        self._feeds = iter(feeds)
        self._names = list(input_names)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        feed = next(self._feeds, None)
        if feed is None:
            return None
        missing = [n for n in self._names if n not in feed]
        if missing:
            raise ValueError(f"calibration input {self.count} lacks {missing}; the graph reads {self._names}")
        self.count += 1
        return {n: np.ascontiguousarray(feed[n]) for n in self._names}


def _preprocess(source: Path, target: Path) -> None:
    """ONNX Runtime's pre-quantisation pass (shape inference, graph clean-up), run in ``target``'s folder.

    When symbolic shape inference gives up, onnxruntime dumps the half-inferred model
    (``sym_shape_infer_temp.onnx`` plus its weights, 140 MB for ``lrw_effv2s``) into the
    current directory; running from ``target``'s (temporary) folder keeps the user's clean.
    """
    from onnxruntime.quantization import quant_pre_process

    source, target = source.resolve(), target.resolve()
    with contextlib.chdir(target.parent):
        try:
            quant_pre_process(str(source), str(target))
        except Exception:
            # Symbolic shape inference cannot follow some reshapes (EfficientNet's squeeze-
            # excitation after the time axis is folded); ONNX's own inference is enough then.
            quant_pre_process(str(source), str(target), skip_symbolic_shape=True)


def quantize_onnx_int8(source: str | os.PathLike[str], output: str | os.PathLike[str],
                       calibration: Iterable[Mapping[str, np.ndarray]], per_channel: bool = True,
                       reduce_range: bool = True, require_saturation_free: bool = True) -> Path:
    """Writes an int8 (static QDQ) copy of an ONNX graph, calibrated on the given inputs.

    The output keeps the source's metadata (so :class:`~avtoolkit.inference.Transcriber`
    runs it like the fp32 file) and adds :data:`QUANT_META_KEY`: the format, the weight and
    activation types, ``reduce_range``, the weights' integer range and the largest uint8 x
    int8 pair sum (:func:`u8s8_pair_bound`). It is written to a temporary file first and
    moved into place, so a failure never leaves half a graph.

    Args:
        source: the fp32 ``.onnx`` file.
        output: the int8 ``.onnx`` file to write.
        calibration: feed dicts (input name to array), one per calibration run; a few dozen
            real inputs are enough.
        per_channel: one weight scale per output channel (more accurate, same speed).
        reduce_range: 7-bit weights ([-64, 64]), so that the AVX2 kernels cannot saturate
            (see the module's docstring). ``False`` gives 8-bit weights, exact only on CPUs
            with VNNI (or AMX); it needs ``require_saturation_free=False``.
        require_saturation_free: refuse (:class:`QuantizationError`, nothing written) a graph
            whose uint8 x int8 pair sums could exceed int16 on a CPU without VNNI.

    Returns:
        The written path.

    Raises:
        ValueError: no calibration input was given, or one lacks a graph input.
        QuantizationError: ``require_saturation_free`` and the graph could saturate.
    """
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    source, output = Path(source), Path(output)
    names = [i.name for i in onnx.load(str(source), load_external_data=False).graph.input]
    feeds = iter(calibration)
    first = next(feeds, None)
    if first is None:
        raise ValueError(f"no calibration inputs were given for {source}")
    # The calibrator adds ReduceMin/ReduceMax outputs and keeps only those per run, so any
    # number of inputs fits in memory. (Its CalibMaxIntermediateOutputs option is not used:
    # in onnxruntime 1.31 it discards each full chunk's ranges instead of merging them.)
    reader = _Calibration(itertools.chain([first], feeds), names)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp, quieter(None, logging.ERROR):  # its per-tensor warnings, on the root logger
        pre, quantized = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        _preprocess(source, pre)
        # reduce_range applies to weights only: activations keep all 8 bits (their ranges are
        # calibrated, ONNX Runtime's docs recommend exactly this for CPUs without VNNI).
        quantize_static(str(pre), str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(QUANTIZED_OPS),
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
        proto = onnx.load(str(quantized))
        bound = u8s8_pair_bound(proto)
        if require_saturation_free and not bound["saturation_free"]:
            raise QuantizationError(
                f"the int8 graph of {source} could saturate on x86-64 CPUs without VNNI: weights in "
                f"{bound['weight_range']}, activations {bound['activation_types']}, uint8 x int8 pair sums up to "
                f"{bound['max_pair_sum']} > {INT16_MAX}; quantise with reduce_range=True (7-bit weights)")
        del proto.metadata_props[:]
        for entry in onnx.load(str(source), load_external_data=False).metadata_props:
            proto.metadata_props.add(key=entry.key, value=entry.value)
        bits = "7-bit (reduce_range)" if reduce_range else "8-bit"
        scheme = {"ops": list(QUANTIZED_OPS), "format": "QDQ",
                  "weights": f"int8 {bits}, symmetric, {'per channel' if per_channel else 'per tensor'}",
                  "activations": "uint8, asymmetric, static ranges", "reduce_range": reduce_range,
                  "weight_range": bound["weight_range"], "max_u8s8_pair_sum": bound["max_pair_sum"],
                  "saturation_free": bound["saturation_free"],
                  "runs_exactly_on": ("any x86-64 CPU (AVX2 or later; no int16 saturation possible)"
                                      if bound["saturation_free"] else "CPUs with VNNI or AMX only (AVX2 kernels "
                                                                      "saturate: outputs may be far off)"),
                  "calibration_runs": reader.count, "onnxruntime": onnxruntime.__version__}
        proto.metadata_props.add(key=QUANT_META_KEY, value=json.dumps(scheme))
        with atomic_write(output) as fh:  # a graph under 2 GB: no external data
            fh.write(proto.SerializeToString())
    return output


def quantization_scheme(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The :data:`QUANT_META_KEY` metadata of an ONNX file (``None`` for an fp32 graph)."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(meta[QUANT_META_KEY]) if QUANT_META_KEY in meta else None


#: CPU flags whose int8 dot products accumulate in int32 (no int16 pair saturation).
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def saturation_warning(scheme: Mapping[str, Any] | None, flags: Iterable[str]) -> str | None:
    """Why an int8 graph may compute wrongly on a CPU with these flags (``None``: it cannot).

    Graphs written before the 7-bit weights (no ``max_u8s8_pair_sum`` in their metadata) and
    those asked for 8-bit weights can saturate ONNX Runtime's AVX2 kernels; on a CPU with
    VNNI (or AMX) they are exact.

    Examples:
        >>> saturation_warning({"saturation_free": True, "max_u8s8_pair_sum": 32640}, {"avx2"}) is None
        True
        >>> saturation_warning({"format": "QDQ"}, {"avx2", "avx512_vnni"}) is None
        True
        >>> saturation_warning({"format": "QDQ"}, {"avx2"}).startswith("int8 graph with 8-bit weights")
        True
    """
    if scheme is None or scheme.get("saturation_free") or set(flags) & VNNI_FLAGS:
        return None
    return ("int8 graph with 8-bit weights (quantised before avtoolkit's 7-bit weights, or with reduce_range "
            "off): this CPU has no VNNI, so ONNX Runtime's uint8 x int8 kernels add pairs of products in a "
            "saturating int16 and the outputs can be far off fp32; re-export it with `avtoolkit export --int8`")


def describe_scheme(scheme: Mapping[str, Any]) -> str:
    """One line for a quantisation scheme, as ``export --int8`` and the benchmark print it.

    Examples:
        >>> describe_scheme({"format": "QDQ", "weights": "int8 7-bit (reduce_range), symmetric, per channel",
        ...                  "activations": "uint8, asymmetric, static ranges", "reduce_range": True,
        ...                  "weight_range": [-64, 64], "max_u8s8_pair_sum": 32640, "saturation_free": True})  # doctest: +NORMALIZE_WHITESPACE
        'QDQ, weights int8 7-bit (reduce_range), symmetric, per channel in [-64, 64],
        activations uint8, asymmetric, static ranges; uint8 x int8 pair sums <= 32640
        (int16 max 32767): no saturation on AVX2'
    """
    text = (f"{scheme.get('format', '?')}, weights {scheme.get('weights', '?')} in {scheme.get('weight_range')}, "
            f"activations {scheme.get('activations', '?')}")
    if "max_u8s8_pair_sum" not in scheme:  # written before the bound was recorded
        return text + "; saturation on AVX2 not checked"
    verdict = "no saturation on AVX2" if scheme.get("saturation_free") else "CAN SATURATE on CPUs without VNNI"
    return f"{text}; uint8 x int8 pair sums <= {scheme['max_u8s8_pair_sum']} (int16 max {INT16_MAX}): {verdict}"


def int8_path(fp32_path: str | os.PathLike[str]) -> Path:
    """Where the int8 twin of an exported graph goes: ``model.onnx`` -> ``model.int8.onnx``.

    Examples:
        >>> int8_path("out/avasr.onnx").as_posix()
        'out/avasr.int8.onnx'
    """
    path = Path(fp32_path)
    return path.with_name(f"{path.stem}.int8{path.suffix or '.onnx'}")


def interleaved_median_ms(calls: Mapping[str, Any], blocks: int = 10, per_block: int = 10,
                          warmup: int = 3) -> dict[str, float]:
    """Median milliseconds per call of each callable, timed in alternating blocks.

    Alternating means a burst of other work on the machine slows every callable alike, so
    their ratio stays meaningful. Blocks (not single calls) with a short pause before each:
    ONNX Runtime's threads spin for a while after a run, and would steal the cores from
    the next session's run if the sessions alternated call by call. (``torch.utils.benchmark``
    times one callable at a time, so it cannot alternate.)

    Examples:
        >>> times = interleaved_median_ms({"a": lambda: sum(range(100)), "b": lambda: None}, blocks=2)
        >>> sorted(times), all(t >= 0 for t in times.values())
        (['a', 'b'], True)
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(blocks):
        for name, call in calls.items():
            time.sleep(0.05)
            for _ in range(warmup):  # the first calls after a switch refill caches
                call()
            for _ in range(per_block):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}
