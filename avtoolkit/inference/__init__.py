"""Inference: CTC decoding, the :class:`Transcriber` API and ONNX export.

Heavy modules load on first use so ``import avtoolkit.inference`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Transcriber", "Transcription", "build_decoder", "export_onnx"]

_LAZY = {
    "Transcriber": "avtoolkit.inference.transcriber",
    "Transcription": "avtoolkit.inference.transcriber",
    "build_decoder": "avtoolkit.decoding.ctc_search",
    "export_onnx": "avtoolkit.inference.export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'avtoolkit.inference' has no attribute {name!r}")
