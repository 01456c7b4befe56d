"""What this machine computes natively: CPU feature flags, oneDNN's instruction-set cap, bf16.

Read by training (which precision a run gets, :mod:`avtoolkit.engine.precision`), by inference
(whether an old int8 graph is exact on this CPU) and by the benchmarks (which kernels ran), so it
sits below all of them and imports no torch at module level.

Examples:
    >>> native_bf16_cpu({"avx2", "fma"}, None)
    False
    >>> native_bf16_cpu({"avx512f", "avx512_bf16"}, "AVX2")  # oneDNN capped to AVX2 kernels
    False
    >>> sorted(cpu_flags("processor: 0\\nflags: fpu avx2 fma\\n"))
    ['avx2', 'fma', 'fpu']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

#: CPU flags (``/proc/cpuinfo``) of native bf16 arithmetic: x86 AVX512-BF16 and AMX, Arm's BF16.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})

#: the CPU flags a run's log and the benchmark report (which kernels a format gets).
REPORTED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                      "amx_int8", "bf16", "asimddp", "i8mm")

#: ``ONEDNN_MAX_CPU_ISA`` values below which oneDNN has no bf16 dot product (it emulates it).
_ONEDNN_NO_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                             "AVX512_CORE_VNNI", "AVX512_MIC", "AVX512_MIC_4OPS", "AVX512_CORE_BF16_YMM"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """This CPU's feature flags (x86 ``flags`` or Arm ``Features`` of ``/proc/cpuinfo``; empty elsewhere)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def onednn_isa_cap() -> str | None:
    """The instruction-set cap oneDNN was given (``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``), if any."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return cap.strip().upper() if cap and cap.strip() else None


def native_bf16_cpu(flags: Iterable[str] | None = None, isa_cap: str | None = None) -> bool:
    """Whether bf16 convolutions and matmuls run natively (not emulated) on this CPU.

    Args:
        flags: the CPU's flags (default: :func:`cpu_flags`).
        isa_cap: oneDNN's ``ONEDNN_MAX_CPU_ISA`` (default: read from the environment;
            ``"DEFAULT"``/``"ALL"`` or unset: no cap).
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    if not flags & BF16_CPU_FLAGS:
        return False
    cap = onednn_isa_cap() if isa_cap is None else isa_cap.upper()
    return cap is None or cap not in _ONEDNN_NO_BF16


def native_bf16_cuda() -> bool:
    """Whether the current CUDA device multiplies bf16 natively (Ampere or later)."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))


def check_device(text: str, option: str = "--device") -> str:
    """``text`` when it names a device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises:
        UsageError: not a device name, or a device this machine lacks (no GPU, too few GPUs).

    Examples:
        >>> check_device("cpu")
        'cpu'
        >>> check_device("banana")
        Traceback (most recent call last):
        ...
        avtoolkit.errors.UsageError: --device banana: not a device; give cpu, cuda, cuda:N or mps
    """
    import torch

    from avtoolkit.errors import UsageError

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f"{option} {text}: not a device; give cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"{option} {text}: this machine has no CUDA GPU that torch can use; give cpu")
        if device.index is not None and device.index >= count:
            raise UsageError(f"{option} {text}: this machine has {count} CUDA GPU{'s' if count > 1 else ''} "
                             f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{option} {text}: MPS is not available on this machine; give cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UsageError(f"{option} {text}: not a device this command runs on; give cpu, cuda, cuda:N or mps")
    return text
