"""Which floating-point precision a run trains in: bf16 only where the hardware has it natively.

bf16 autocast is fast only where the chip multiplies bfloat16 natively: CPUs with
AVX512-BF16 or AMX, NVIDIA GPUs from Ampere (compute capability 8.0) on. Elsewhere it is
emulated: on an AVX2-only CPU bf16 autocast ran ``lrw_effv2t`` inference about 10x slower
than fp32 (3780 vs 380 ms at batch 1, one thread). So the shipped recipes say
``trainer.precision: auto``: ``bf16-mixed`` where bf16 is native, ``32-true`` elsewhere. An
explicit ``bf16-mixed`` is kept, with a warning in the run's log where it is emulated.

oneDNN (which runs torch's CPU convolutions and bf16 matmuls) can be capped below what the
CPU has with ``ONEDNN_MAX_CPU_ISA`` (e.g. ``AVX2``, to run the kernels an AVX2 CPU runs);
a cap below ``AVX512_CORE_BF16`` makes bf16 emulated, and counts as such here.

Everything takes the hardware facts (:mod:`avtoolkit.hardware`) as arguments (defaults: this
machine's), so a test can ask what an AVX2-only CPU or a pre-Ampere GPU would get.

Examples:
    >>> choose_precision("auto", "cpu", native_bf16_cpu({"avx2", "fma"}, None)).precision
    '32-true'
    >>> choose_precision("auto", "cpu", native_bf16_cpu({"avx2", "avx512f", "avx512_bf16"}, None)).precision
    'bf16-mixed'
    >>> native_bf16_cpu({"avx512f", "avx512_bf16"}, "AVX2")  # oneDNN capped to AVX2 kernels
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avtoolkit.hardware import REPORTED_CPU_FLAGS, cpu_flags, native_bf16_cpu, native_bf16_cuda, onednn_isa_cap

#: the precision the shipped recipes ask for: the fastest the hardware does natively.
AUTO = "auto"

#: precisions that compute in bfloat16 (Lightning's spellings).
BF16_PRECISIONS = frozenset({"bf16-mixed", "bf16-true", "bf16"})

@dataclass(frozen=True)
class PrecisionChoice:
    """What a run trains in, and why (one line for the run's log)."""

    precision: str  #: the value given to ``lightning.Trainer(precision=...)``
    requested: str  #: the recipe's ``trainer.precision``
    device: str  #: "cpu", "cuda" or another accelerator
    native_bf16: bool
    reason: str
    emulated: bool = False  #: bf16 kept although the hardware emulates it (slow)

    def log_line(self) -> str:
        return f"precision: {self.precision} (trainer.precision={self.requested}; {self.reason})"


def choose_precision(requested: Any, device: str, native_bf16: bool) -> PrecisionChoice:
    """The precision to train in on ``device``.

    ``auto`` is ``bf16-mixed`` where bf16 is native (CPU or CUDA), else ``32-true``. Any
    other value is kept as given; a bf16 one on hardware without native bf16 is marked
    ``emulated`` (the run's log warns: it is slower than fp32 there).

    Examples:
        >>> choose_precision("auto", "cuda", native_bf16=False).precision
        '32-true'
        >>> c = choose_precision("bf16-mixed", "cpu", native_bf16=False)
        >>> c.precision, c.emulated
        ('bf16-mixed', True)
        >>> choose_precision(32, "cpu", native_bf16=False).precision
        '32'
    """
    requested = str(requested)
    hardware = "this CPU" if device == "cpu" else f"this {device} device"
    if requested == AUTO:
        if device in ("cpu", "cuda") and native_bf16:
            return PrecisionChoice("bf16-mixed", requested, device, True, f"{hardware} has native bf16")
        why = (f"{hardware} lacks native bf16 (emulated bf16 is slower than fp32)" if device in ("cpu", "cuda")
               else "auto picks bf16 on CPU and CUDA only")
        return PrecisionChoice("32-true", requested, device, native_bf16, why)
    if requested in BF16_PRECISIONS and not native_bf16:
        return PrecisionChoice(requested, requested, device, False,
                               f"{hardware} lacks native bf16, so bf16 is emulated and slower than fp32; "
                               f"trainer.precision=auto would train in fp32 here", emulated=True)
    return PrecisionChoice(requested, requested, device, native_bf16, "as the recipe says")


def training_device(accelerator: str) -> str:
    """The device family a Lightning ``accelerator`` setting trains on (``auto``: CUDA if present)."""
    if accelerator in ("gpu", "cuda"):
        return "cuda"
    if accelerator == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return accelerator


def resolve_precision(requested: Any, accelerator: str) -> PrecisionChoice:
    """:func:`choose_precision` with this machine's hardware facts."""
    device = training_device(accelerator)
    native = native_bf16_cuda() if device == "cuda" else native_bf16_cpu() if device == "cpu" else False
    choice = choose_precision(requested, device, native)
    if device == "cpu":
        flags = sorted(cpu_flags() & set(REPORTED_CPU_FLAGS))
        cap = onednn_isa_cap()
        detail = f"CPU flags: {' '.join(flags) or 'none of ' + '/'.join(REPORTED_CPU_FLAGS[:6])}"
        if cap:
            detail += f"; ONEDNN_MAX_CPU_ISA={cap}"
        choice = PrecisionChoice(choice.precision, choice.requested, choice.device, choice.native_bf16,
                                 f"{choice.reason}; {detail}", choice.emulated)
    return choice
