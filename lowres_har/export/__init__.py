"""Deployment: export artefacts (ONNX, TFLite, Edge TPU) and measure models.

``lowres_har.export.to_onnx``, ``to_tflite``, ``to_edgetpu`` and ``to_streaming`` are resolved
lazily from their submodules (:mod:`.onnx`, :mod:`.tflite`, :mod:`.edgetpu`, :mod:`.streaming`),
so importing this package stays light; the optional packages they need (``lowres-har[onnx]``,
``lowres-har[tflite]``) are imported only when an export runs.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["load_model", "to_edgetpu", "to_onnx", "to_streaming", "to_tflite"]

_LAZY = {
    "load_model": "common",
    "to_onnx": "onnx",
    "to_tflite": "tflite",
    "to_edgetpu": "edgetpu",
    "to_streaming": "streaming",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
