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
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from avtoolkit.atomic import atomic_write

#: metadata key saying how a graph was quantised (absent on fp32 graphs).
QUANT_META_KEY = "avtoolkit.quantization"

#: The ops that run in int8: where the multiply-accumulates are. Quantising everything
#: (ONNX Runtime's default) also rounds the fusion gates, padding masks and residual sums
#: to 8 bits: on a small model trained on the six GRID clips that raised CER from 1.5% to
#: 35%, while these three alone left it at 1.5% (measured once; the slow GRID test in
#: tests/inference/test_transcriber.py checks int8 stays within 5 CER points of fp32).
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Silences the quantiser's per-tensor warnings (it logs one for every integer tensor it skips).

    It lowers the root logger for the whole process while quantising (not thread-safe; the
    quantiser itself is not meant to run concurrently either).
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


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
                       calibration: Iterable[Mapping[str, np.ndarray]], per_channel: bool = True) -> Path:
    """Writes an int8 (static QDQ) copy of an ONNX graph, calibrated on the given inputs.

    The output keeps the source's metadata (so :class:`~avtoolkit.inference.Transcriber`
    runs it like the fp32 file) and adds :data:`QUANT_META_KEY`. It is written to a
    temporary file first and moved into place, so a failure never leaves half a graph.

    Args:
        source: the fp32 ``.onnx`` file.
        output: the int8 ``.onnx`` file to write.
        calibration: feed dicts (input name to array), one per calibration run; a few dozen
            real inputs are enough.
        per_channel: one weight scale per output channel (more accurate, same speed).

    Returns:
        The written path.

    Raises:
        ValueError: no calibration input was given, or one lacks a graph input.
    """
    import onnx
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
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp, _quiet_quantizer():
        pre, quantized = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        _preprocess(source, pre)
        quantize_static(str(pre), str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(QUANTIZED_OPS))
        proto = onnx.load(str(quantized))
        del proto.metadata_props[:]
        for entry in onnx.load(str(source), load_external_data=False).metadata_props:
            proto.metadata_props.add(key=entry.key, value=entry.value)
        scheme = {"ops": list(QUANTIZED_OPS), "weights": "int8 per channel" if per_channel else "int8 per tensor",
                  "activations": "uint8, static ranges", "format": "QDQ", "calibration_runs": reader.count}
        proto.metadata_props.add(key=QUANT_META_KEY, value=json.dumps(scheme))
        with atomic_write(output) as fh:  # a graph under 2 GB: no external data
            fh.write(proto.SerializeToString())
    return output


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
