"""Resolution views: degrade HR frames to (e)LR and resize back to the network's input size.

All functions take and return ``uint8`` numpy clips ``(T, H, W, C)``. Sizes are ``(H, W)``:
``(12, 16)`` is 12 rows × 16 columns (the papers' "16×12").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from lowres_har.transforms.degradation import _check_quality, gaussian_blur, jpeg_compress

__all__ = [
    "ASPECT_MODES",
    "BLUR_OVERSAMPLE",
    "Degrade",
    "Resize",
    "center_crop_to_aspect",
    "pad_to_aspect",
    "resize_clip",
]

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
    if not isinstance(clip, np.ndarray) or clip.ndim != 4:
        shape = getattr(clip, "shape", type(clip).__name__)
        raise ValueError(f"expected a numpy clip (T, H, W, C), got {shape}")
    if min(clip.shape) < 1:
        raise ValueError(f"expected a non-empty clip (T, H, W, C), got shape {clip.shape}")


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


def _padded_shape(h: int, w: int, aspect: float) -> tuple[int, int]:
    """``(H, W)`` of the smallest frame with ``W / H == aspect`` that contains ``h × w``."""
    if w / h > aspect:  # too wide: add rows
        return max(h, round(w / aspect)), w
    return h, max(w, round(h * aspect))


def _pad_value(value: int | Sequence[int]) -> tuple[int, ...]:
    values = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not values or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in values):
        raise ValueError(f"pad_value must be an int in [0, 255] or one per channel, got {value!r}")
    return tuple(int(v) for v in values)


def pad_to_aspect(clip: np.ndarray, aspect: float, value: int | Sequence[int] = 0) -> np.ndarray:
    """Pad ``clip`` ``(T, H, W, C)`` symmetrically with ``value`` until ``W / H`` equals ``aspect``.

    The whole frame stays visible (letterbox / pillarbox); an odd number of border rows or columns
    puts the extra one at the bottom / right.

    Args:
        clip: ``(T, H, W, C)``.
        aspect: target width / height.
        value: border value, one for all channels or one per channel.

    Returns:
        ``(T, H', W', C)`` with ``H' >= H``, ``W' >= W`` and ``W' / H' ≈ aspect``; ``clip`` itself
        when no border is needed.
    """
    _check_clip(clip)
    if not aspect > 0:
        raise ValueError(f"aspect must be > 0, got {aspect}")
    t, h, w, c = clip.shape
    fill = _pad_value(value)
    if len(fill) not in (1, c):
        raise ValueError(f"pad value has {len(fill)} entries but the clip has {c} channels")
    new_h, new_w = _padded_shape(h, w, aspect)
    if (new_h, new_w) == (h, w):
        return clip
    out = np.empty((t, new_h, new_w, c), dtype=clip.dtype)
    out[...] = np.asarray(fill, dtype=clip.dtype)
    y0, x0 = (new_h - h) // 2, (new_w - w) // 2
    out[:, y0 : y0 + h, x0 : x0 + w] = clip
    return out


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


#: Values of ``Degrade(aspect=...)``.
ASPECT_MODES = ("crop", "pad", "stretch")

#: Lens blur runs at no more than this many source pixels per output pixel: a larger source is
#: area-shrunk first (a box filter of 1/4 output pixel, variance 1/192 px², negligible next to the
#: PSF) so the Gaussian kernel stays short whatever the input resolution.
BLUR_OVERSAMPLE = 4


class Degrade:
    """Simulate a low-resolution camera: fit the target aspect, blur, area-downsample, compress.

    ``Degrade((12, 16))`` turns a ``(T, 112, 112, 3)`` clip into ``(T, 12, 16, 3)`` by cropping the
    centred 84×112 region (aspect 4:3, W:H) and averaging 7×7 pixel blocks, which is what a sensor
    with 7× larger pixels records.

    Steps, in order (all deterministic, so their output can be cached):

    1. aspect: ``"crop"`` the largest centred region with the target aspect (default),
       ``"pad"`` symmetric constant borders up to the target aspect (the whole frame stays
       visible, letterboxed) or ``"stretch"`` (squeeze the whole frame, distorting shapes);
    2. lens blur (``blur_sigma > 0``): a Gaussian PSF whose sigma is given in *output* pixels and
       scaled to the source resolution, so a setting means the same optical blur whatever the
       input size. It is applied to the content before padding, so borders do not bleed in;
    3. resize to ``size`` with ``interpolation`` (area averaging by default);
    4. JPEG compression of the low-resolution frames (``jpeg_quality``).

    Sensor noise is stochastic and lives in :class:`~lowres_har.transforms.GaussianNoise`.

    Args:
        size: target ``(H, W)``.
        interpolation: ``"area"`` (pixel averaging, default) or another :func:`resize_clip` mode.
        crop_to_aspect: backward-compatible alias of ``aspect``: ``True`` is ``"crop"``,
            ``False`` is ``"stretch"``.
        aspect: ``"crop"``, ``"pad"`` or ``"stretch"`` (default ``"crop"``).
        pad_value: border value for ``aspect="pad"``: one intensity or one per channel (0–255).
        blur_sigma: lens blur sigma in output pixels (0 disables; ~0.5–1 is a soft lens).
        jpeg_quality: JPEG quality in ``[1, 100]`` for the output frames, ``None`` disables.
    """

    def __init__(
        self,
        size: Sequence[int] | int = (12, 16),
        interpolation: str = "area",
        crop_to_aspect: bool | None = None,
        *,
        aspect: str | None = None,
        pad_value: int | Sequence[int] = 0,
        blur_sigma: float = 0.0,
        jpeg_quality: int | None = None,
    ) -> None:
        self.size = _size(size)
        if interpolation not in _INTERP:
            raise ValueError(
                f"interpolation must be one of {sorted(_INTERP)}, got {interpolation!r}"
            )
        self.interpolation = interpolation
        from_alias = None if crop_to_aspect is None else ("crop" if crop_to_aspect else "stretch")
        if aspect is None:
            aspect = from_alias or "crop"
        elif from_alias is not None and from_alias != aspect:
            raise ValueError(
                f"Degrade: crop_to_aspect={crop_to_aspect} contradicts aspect={aspect!r}; "
                "give only aspect"
            )
        if aspect not in ASPECT_MODES:
            raise ValueError(f"aspect must be one of {ASPECT_MODES}, got {aspect!r}")
        self.aspect = aspect
        self.pad_value = _pad_value(pad_value)
        blur = float(blur_sigma)
        if not math.isfinite(blur) or blur < 0:
            raise ValueError(f"blur_sigma must be finite and >= 0, got {blur_sigma!r}")
        self.blur_sigma = blur
        self.jpeg_quality = None if jpeg_quality is None else _check_quality(jpeg_quality)

    @property
    def crop_to_aspect(self) -> bool:
        """``True`` when the frame is cropped to the target aspect (``aspect == "crop"``)."""
        return self.aspect == "crop"

    def _blur(self, clip: np.ndarray) -> np.ndarray:
        h_out, w_out = self.size
        h, w = clip.shape[1:3]
        # extent of the frame that maps onto the output (the padded frame for "pad")
        fit_h, fit_w = _padded_shape(h, w, w_out / h_out) if self.aspect == "pad" else (h, w)
        shrink = min(fit_h / h_out, fit_w / w_out) / BLUR_OVERSAMPLE
        if shrink > 1:
            new = (max(1, round(h / shrink)), max(1, round(w / shrink)))
            clip = resize_clip(clip, new, "area")
            fit_h, fit_w = fit_h * new[0] / h, fit_w * new[1] / w
        sigma = (self.blur_sigma * fit_h / h_out, self.blur_sigma * fit_w / w_out)
        return gaussian_blur(clip, sigma)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, C)`` → uint8 ``(T, *size, C)``."""
        _check_clip(clip)
        if self.aspect == "crop":
            clip = center_crop_to_aspect(clip, self.size[1] / self.size[0])
        if self.blur_sigma > 0:
            clip = self._blur(clip)
        if self.aspect == "pad":
            clip = pad_to_aspect(clip, self.size[1] / self.size[0], self.pad_value)
        clip = resize_clip(clip, self.size, self.interpolation)
        if self.jpeg_quality is not None:
            clip = jpeg_compress(clip, self.jpeg_quality)
        return clip

    def __repr__(self) -> str:
        extra = ""
        if self.aspect == "pad":
            extra += f", pad_value={self.pad_value}"
        if self.blur_sigma > 0:
            extra += f", blur_sigma={self.blur_sigma}"
        if self.jpeg_quality is not None:
            extra += f", jpeg_quality={self.jpeg_quality}"
        return (
            f"Degrade(size={self.size}, interpolation={self.interpolation!r}, "
            f"aspect={self.aspect!r}{extra})"
        )


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
