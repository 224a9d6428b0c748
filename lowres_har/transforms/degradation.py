"""Camera degradations on uint8 clips: lens blur, JPEG compression and sensor noise.

The deterministic steps (:func:`gaussian_blur`, :func:`jpeg_compress`) are used by
:class:`~lowres_har.transforms.Degrade` through its ``blur_sigma`` and ``jpeg_quality`` arguments,
which is where they normally belong: the blur must be scaled to the source resolution, which only
``Degrade`` knows. :class:`JpegCompression` is the same compression as a standalone transform (e.g.
to compress after noise when nothing is cached).

:class:`GaussianNoise` is stochastic and deliberately *not* part of ``Degrade``: a preprocessing
cache stores the deterministic degraded frames and noise is added when a clip is loaded, so every
epoch sees fresh noise.

All clips are numpy ``uint8 (T, H, W, C)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch

__all__ = [
    "CHROMA_SUBSAMPLING",
    "GaussianNoise",
    "JpegCompression",
    "gaussian_blur",
    "jpeg_compress",
]


def _check_uint8_clip(clip: np.ndarray, what: str) -> None:
    if not isinstance(clip, np.ndarray) or clip.ndim != 4:
        shape = getattr(clip, "shape", type(clip).__name__)
        raise ValueError(f"{what}: expected a numpy clip (T, H, W, C), got {shape}")
    if clip.dtype != np.uint8:
        raise ValueError(f"{what}: expected a uint8 clip, got dtype {clip.dtype}")


def _gauss_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian ``(k, 1)`` float32, truncated at 3 sigma (``[[1]]`` for 0)."""
    if sigma == 0:
        return np.ones((1, 1), np.float32)
    return cv2.getGaussianKernel(2 * math.ceil(3 * sigma) + 1, sigma, cv2.CV_32F)


def gaussian_blur(clip: np.ndarray, sigma: float | Sequence[float]) -> np.ndarray:
    """Blur every frame with a Gaussian point-spread function.

    Args:
        clip: uint8 ``(T, H, W, C)``.
        sigma: standard deviation in pixels *of this clip*, one value or ``(sigma_y, sigma_x)``.
            The kernel is truncated at 3 sigma; borders are reflected (``BORDER_REFLECT``).

    Returns:
        uint8 ``(T, H, W, C)``; ``clip`` itself when both sigmas are 0.
    """
    _check_uint8_clip(clip, "gaussian_blur")
    if isinstance(sigma, Sequence):
        if len(sigma) != 2:
            raise ValueError(f"gaussian_blur: sigma must be a number or (sy, sx), got {sigma!r}")
        sy, sx = float(sigma[0]), float(sigma[1])
    else:
        sy = sx = float(sigma)
    if not (math.isfinite(sy) and math.isfinite(sx)) or sy < 0 or sx < 0:
        raise ValueError(f"gaussian_blur: sigma must be finite and >= 0, got {sigma!r}")
    if sy == 0 and sx == 0:
        return clip
    # separable filtering: much faster than cv2.GaussianBlur's bit-exact uint8 path. REFLECT
    # mirrors about the frame edge itself (not the edge pixel's centre), so the border behaves the
    # same at every resolution and Degrade's blur does not depend on the source size there either

    ky = _gauss_kernel(sy)
    kx = _gauss_kernel(sx)
    out = np.empty_like(clip)
    for t in range(clip.shape[0]):
        r = cv2.sepFilter2D(clip[t], -1, kx, ky, borderType=cv2.BORDER_REFLECT)
        out[t] = r.reshape(out.shape[1:])
    return out


def _check_quality(quality: int) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)):
        raise ValueError(f"jpeg_quality must be an integer in [1, 100], got {quality!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100], got {quality}")
    return int(quality)


#: Chroma subsampling modes of :func:`jpeg_compress` (``J:a:b`` notation without colons).
CHROMA_SUBSAMPLING = {
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
}


def _check_chroma(chroma: str) -> str:
    if chroma not in CHROMA_SUBSAMPLING:
        raise ValueError(f"chroma must be one of {sorted(CHROMA_SUBSAMPLING)}, got {chroma!r}")
    return chroma


def jpeg_compress(clip: np.ndarray, quality: int, chroma: str = "420") -> np.ndarray:
    """Encode and decode every frame as a JPEG (deterministic compression artefacts).

    Args:
        clip: uint8 ``(T, H, W, C)`` with ``C = 3`` (RGB) or ``C = 1`` (grey).
        quality: JPEG quality in ``[1, 100]`` (libjpeg scale; 95 is nearly lossless, 10 is blocky).
        chroma: chroma subsampling, ``"420"`` (default, what cameras and video codecs use: colour
            at half the resolution in both directions, so strongly coloured detail is smeared even
            at quality 100), ``"422"`` or ``"444"`` (no subsampling).

    Returns:
        uint8 ``(T, H, W, C)``.
    """
    _check_uint8_clip(clip, "jpeg_compress")
    q = _check_quality(quality)
    channels = clip.shape[3]
    if channels not in (1, 3):
        raise ValueError(f"jpeg_compress: needs 1 or 3 channels, got a clip of shape {clip.shape}")
    params = [
        cv2.IMWRITE_JPEG_QUALITY,
        q,
        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
        CHROMA_SUBSAMPLING[_check_chroma(chroma)],
    ]
    flag = cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE
    out = np.empty_like(clip)
    for t in range(clip.shape[0]):
        frame = clip[t, :, :, ::-1] if channels == 3 else clip[t, :, :, 0]  # cv2 wants BGR
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame), params)
        if not ok:
            raise RuntimeError(f"jpeg_compress: OpenCV failed to encode frame {t} ({clip.shape})")
        dec = cv2.imdecode(buf, flag)
        if dec is None:
            raise RuntimeError(f"jpeg_compress: OpenCV failed to decode frame {t} ({clip.shape})")
        out[t] = dec[:, :, ::-1] if channels == 3 else dec[:, :, None]
    return out


class JpegCompression:
    """Standalone JPEG compression of every frame (see :func:`jpeg_compress`).

    :class:`~lowres_har.transforms.Degrade` applies the same step via ``jpeg_quality=``; use this
    class when the compression should come later in a pipeline (e.g. after noise).

    Args:
        quality: JPEG quality in ``[1, 100]``.
        chroma: chroma subsampling ``"420"`` (default), ``"422"`` or ``"444"``.
    """

    def __init__(self, quality: int, chroma: str = "420") -> None:
        self.quality = _check_quality(quality)
        self.chroma = _check_chroma(chroma)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, C)`` → uint8 ``(T, H, W, C)``."""
        return jpeg_compress(clip, self.quality, self.chroma)

    def __repr__(self) -> str:
        return f"JpegCompression(quality={self.quality}, chroma={self.chroma!r})"


class GaussianNoise:
    """Additive Gaussian sensor noise on uint8 frames.

    The standard deviation is drawn once per clip (uniformly from ``std`` when it is a range);
    the noise itself is fresh for every pixel of every frame. The result is rounded and clipped
    back to ``[0, 255]``, so the effective std is a little lower near black and white.

    Args:
        std: noise standard deviation in 0–255 intensity units, a number or a ``(low, high)``
            range drawn from once per clip.
        per_channel: independent noise per colour channel (colour noise, default); ``False`` adds
            the same value to every channel of a pixel (luminance noise).
        generator: torch generator to draw from (default: torch's global RNG, which Lightning's
            ``seed_everything`` and the DataLoader's per-worker seeding control). A generator given
            here is copied into each DataLoader worker, so workers would draw the same noise.
    """

    def __init__(
        self,
        std: float | tuple[float, float] = 5.0,
        *,
        per_channel: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        low, high = (float(std), float(std)) if isinstance(std, (int, float)) else map(float, std)
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
            raise ValueError(f"GaussianNoise: std must be >= 0 or a range low <= high, got {std!r}")
        self.std = (low, high)
        self.per_channel = per_channel
        self.generator = generator

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, C)`` → uint8 ``(T, H, W, C)`` with noise added."""
        _check_uint8_clip(clip, "GaussianNoise")
        low, high = self.std
        u = float(torch.rand((), generator=self.generator)) if high > low else 0.0
        std = low + (high - low) * u
        if std == 0:
            return clip
        shape = clip.shape if self.per_channel else (*clip.shape[:3], 1)
        noise = torch.randn(shape, generator=self.generator, dtype=torch.float32).numpy()
        noisy = clip.astype(np.float32)
        noisy += noise * np.float32(std)
        np.rint(noisy, out=noisy)
        np.clip(noisy, 0, 255, out=noisy)
        return noisy.astype(np.uint8)

    def __repr__(self) -> str:
        std = self.std[0] if self.std[0] == self.std[1] else self.std
        return f"GaussianNoise(std={std}, per_channel={self.per_channel})"
