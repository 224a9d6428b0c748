"""Guard for a torchvision whose C extension cannot load on the installed torch.

A CPU build of torch paired with a CUDA (or otherwise mismatched) torchvision wheel fails at
``import torchvision`` with ``operator torchvision::nms does not exist``: torchvision registers
fake (meta) kernels for its C++ operators at import time, and those registrations need the
operator schemas that only its extension library defines. Because lightning, torchmetrics and
timm import torchvision, the failure takes the whole stack down.

:func:`ensure_torchvision` runs before anything imports torchvision. It does nothing when
torchvision is absent or its extension loads. Only when the extension fails to load does it define
the operator *schemas* (no kernels) so that the pure-Python parts of torchvision (models,
transforms) import and work; calling a detection operator such as ``nms`` then raises torch's own
"no kernel" error. It warns once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import torch

__all__ = ["ensure_torchvision", "TORCHVISION_OP_SCHEMAS"]

# Schemas of the operators torchvision's extension defines (names and argument lists of its
# TORCH_LIBRARY block). Only the schemas are declared; no kernel is registered.
TORCHVISION_OP_SCHEMAS: tuple[str, ...] = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, "
    "int sampling_ratio, bool aligned) -> Tensor",
    "qroi_align(Tensor input, Tensor rois, float input_scale, int input_zero_point, "
    "float rois_scale, int rois_zero_point, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor",
    "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, "
    "float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, "
    "SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width) -> (Tensor, Tensor)",
    "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, "
    "SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, "
    "SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
    "SymInt pooled_width) -> (Tensor, Tensor)",
    "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, "
    "float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, "
    "SymInt channels, SymInt height, SymInt width) -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, "
    "SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, "
    "Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, "
    "SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, "
    "bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "box_iou_rotated(Tensor boxes1, Tensor boxes2) -> Tensor",
    "_cuda_version() -> int",
)

_WARNED_ENV = "LOWRES_HAR_TORCHVISION_WARNED"
_state: dict[str, object] = {"checked": False, "patched": False, "library": None}


def _extension_loads() -> tuple[bool, str]:
    """Try to load torchvision's ``_C`` extension; return ``(ok, reason)``."""
    try:
        torch.ops.torchvision.nms  # noqa: B018  (already registered: nothing to do)
        return True, ""
    except (AttributeError, RuntimeError):
        pass
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True, ""
    folder = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))
    if not candidates:
        return False, f"no _C extension found in {folder}"
    try:
        torch.ops.load_library(str(candidates[0]))
    except (OSError, ImportError, RuntimeError) as err:
        return False, f"{type(err).__name__}: {err}"
    return True, ""


def ensure_torchvision() -> bool:
    """Make ``import torchvision`` work even when its C extension cannot load.

    Must run before the first import of torchvision (lowres_har's ``__init__`` calls it).

    Returns:
        ``True`` when the missing operator schemas had to be defined (the extension failed to
        load), ``False`` when nothing was needed.
    """
    if _state["checked"]:
        return bool(_state["patched"])
    _state["checked"] = True
    if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
        return False
    ok, reason = _extension_loads()
    if ok:
        return False
    library = torch.library.Library("torchvision", "DEF")
    for schema in TORCHVISION_OP_SCHEMAS:
        with contextlib.suppress(RuntimeError):  # already defined elsewhere: keep theirs
            library.define(schema)
    _state["library"] = library  # keep the registrations alive
    _state["patched"] = True
    if os.environ.get(_WARNED_ENV):  # a parent process (spawned worker, DDP rank) already warned
        return True
    os.environ[_WARNED_ENV] = "1"
    warnings.warn(
        "torchvision's C extension could not be loaded with this torch "
        f"({torch.__version__}); {reason}. lowres-har declared its operator schemas so that "
        "torchvision's Python models and transforms work; its C++ ops (nms, roi_align, "
        "deform_conv2d, video decoding) are unavailable. Install a torchvision build that matches "
        "your torch to silence this warning.",
        RuntimeWarning,
        stacklevel=2,
    )
    return True
