"""Resolution views: degrade HR frames to (e)LR and resize back to the network's input size.

All functions take and return ``uint8`` numpy clips ``(T, H, W, C)``. Sizes are ``(H, W)``:
``(12, 16)`` is 12 rows × 16 columns (the papers' "16×12").
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["Degrade", "Resize", "center_crop_to_aspect", "resize_clip"]

_INTERP = {
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


def _size(size: Sequence[int] | int) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (H, W) with positive entries, got {size!r}")
    return (int(size[0]), int(size[1]))


def _check_clip(clip: np.ndarray) -> None:
    if clip.ndim != 4:
        raise ValueError(f"expected a clip (T, H, W, C), got shape {clip.shape}")


def center_crop_to_aspect(clip: np.ndarray, aspect: float) -> np.ndarray:
    """Largest centred crop of ``clip`` ``(T, H, W, C)`` whose ``W / H`` equals ``aspect``."""
    _check_clip(clip)
    h, w = clip.shape[1:3]
    if w / h > aspect:  # too wide: crop columns
        new_w = max(1, round(h * aspect))
        x0 = (w - new_w) // 2
        return clip[:, :, x0 : x0 + new_w]
    new_h = max(1, round(w / aspect))
    y0 = (h - new_h) // 2
    return clip[:, y0 : y0 + new_h]


def resize_clip(
    clip: np.ndarray, size: Sequence[int] | int, interpolation: str = "bilinear"
) -> np.ndarray:
    """Resize every frame of ``clip`` ``(T, H, W, C)`` to ``size`` ``(h, w)`` (no aspect handling)."""
    _check_clip(clip)
    h, w = _size(size)
    if clip.shape[1:3] == (h, w):
        return clip
    if interpolation not in _INTERP:
        raise ValueError(f"interpolation must be one of {sorted(_INTERP)}, got {interpolation!r}")
    flag = _INTERP[interpolation]
    out = np.empty((clip.shape[0], h, w, clip.shape[3]), dtype=clip.dtype)
    for t, frame in enumerate(clip):
        r = cv2.resize(frame, (w, h), interpolation=flag)
        out[t] = r.reshape(h, w, -1)
    return out


class Degrade:
    """Simulate a low-resolution camera: centre-crop to the target aspect, then area-downsample.

    ``Degrade((12, 16))`` turns a ``(T, 112, 112, 3)`` clip into ``(T, 12, 16, 3)`` by cropping the
    centred 84×112 region (aspect 4:3, W:H) and averaging 7×7 pixel blocks, which is what a sensor
    with 7× larger pixels records.

    Args:
        size: target ``(H, W)``.
        interpolation: ``"area"`` (pixel averaging, default) or another :func:`resize_clip` mode.
        crop_to_aspect: crop to the target aspect first (``False`` squeezes the whole frame).
    """

    def __init__(
        self,
        size: Sequence[int] | int = (12, 16),
        interpolation: str = "area",
        crop_to_aspect: bool = True,
    ) -> None:
        self.size = _size(size)
        self.interpolation = interpolation
        self.crop_to_aspect = crop_to_aspect

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``uint8 (T, H, W, C)`` → ``uint8 (T, *size, C)``."""
        if self.crop_to_aspect:
            clip = center_crop_to_aspect(clip, self.size[1] / self.size[0])
        return resize_clip(clip, self.size, self.interpolation)

    def __repr__(self) -> str:
        return f"Degrade(size={self.size}, interpolation={self.interpolation!r})"


class Resize:
    """Resize every frame to ``size`` (e.g. upsample a 12×16 eLR clip to the 32×32 network input).

    Args:
        size: ``(H, W)``.
        interpolation: ``"bilinear"`` (default), ``"bicubic"``, ``"nearest"`` or ``"area"``.
    """

    def __init__(self, size: Sequence[int] | int, interpolation: str = "bilinear") -> None:
        self.size = _size(size)
        self.interpolation = interpolation

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` → ``(T, *size, C)``, same dtype."""
        return resize_clip(clip, self.size, self.interpolation)

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, interpolation={self.interpolation!r})"
