"""The MSN slack foreground mask (Sec. IV-B, eqs. (6)–(7) of the MSN paper) and its uint8 format.

For a clip of ``N`` frames :func:`slack_mask` returns one mask per frame, ``(N, H, W)`` float32:

1. ``f_i``: grayscale frames (``cv2.COLOR_RGB2GRAY``) as float in ``[0, 1]``;
2. ``f*_i = f_i ∗ G``: a 3×3 Gaussian ``G`` (``µ = 0``, ``sigma``; the paper asks for
   ``σ < 1``, default 0.8); with ``size`` the smoothed frame is then padded (edge replicated,
   symmetric) to the aspect of ``size`` and resized to it, as the paper rescales to 32×32
   "padding to the original image ratio";
3. ``f*S_i = ‖Sobel(f*_i)‖``: the L2 gradient magnitude ``sqrt(Gx² + Gy²)`` of OpenCV's
   (unnormalised) ``sobel_ksize × sobel_ksize`` Sobel derivatives (paper: kernel size 5);
4. ``g_n = |f*S_{n+1} − f*S_n|`` for ``n = 1 … N−1``: the absolute difference of the two
   one-frame-shifted sequences ``V*_1 = (f*S_1 … f*S_{N−1})`` and ``V*_2 = (f*S_2 … f*S_N)``;
5. ``A_n = G ∗ (1/k) Σ_{j=n}^{n+k−1} g_j`` for ``n = 1 … N`` (eq. (6), a forward window of
   ``k`` difference frames, ``k = 3`` in the paper). The paper notes that ``A`` "might require an
   extension with up to k frames"; here the differences are extended by repeating the last one,
   ``g_j = g_{N−1}`` for ``j ≥ N``, so every frame gets a full ``k``-term window and the clip
   gets exactly ``N`` motion frames whatever ``N mod k``. Hence ``A_N = A_{N−1} = G ∗ g_{N−1}``
   and e.g. for ``k = 3`` ``A_{N−2} = G ∗ (g_{N−2} + 2 g_{N−1}) / 3``. A one-frame clip has no
   difference and ``A = 0``;
6. motion test: the clip *moves* when its motion score ``mean_n mean_pixels A_n > tau``
   (strictly; ``tau = 0.1`` in the paper). The mask is then ``M_n = A_n ⊙ ∇·∇ f*_n`` (eq. (7)),
   otherwise ``M_n = ∇·∇ f*_n``. ``∇·∇`` is the 3×3 Laplacian
   ``[[0, 1, 0], [1, −4, 1], [0, 1, 0]]`` in both branches;
7. with ``normalize=True`` (default) the signed mask is divided by its largest absolute value
   over the whole clip, so it lies in ``[-1, 1]`` with 0 for flat regions; a clip whose raw peak is
   at most 1e-6 (flat frames: float rounding only; one grey level of contrast gives ~1e-3) is
   returned as zeros. Store it with :func:`mask_to_uint8`. ``normalize=False`` keeps the raw
   values.

All filters reflect the border (``BORDER_REFLECT_101``). Intensities are in ``[0, 1]`` and the
Sobel kernel is OpenCV's integer kernel (for ``ksize=5`` it is 128× the per-pixel derivative):
with this scale the paper's ``tau = 0.1`` separates still from moving clips. Motion scores
measured on the 36 real clips of ``../shared/data/real_clips`` (first 32 frames, degraded to
32×32): 0.01–0.03 for nearly still scenes (a fixed-camera corridor, tai chi, an NTU "drink water"
clip), 0.08 for two slow NTU clips and one ASL sign, 0.11–0.33 for the other signing and exercise
clips and a clean-and-jerk clip, 0.26–0.94 for the other Kinetics/UCF/ActivityNet action clips
(2.0 for a 6 fps re-rendered one); a still frame repeated with Gaussian
sensor noise of std 1/255 scores 0.06, std 2/255 scores 0.1. With a derivative-normalised Sobel
(÷128) or intensities in ``[0, 255]`` the same threshold would put every real clip in one branch.

Everything runs as a handful of OpenCV calls over the frames stacked as channels (no per-frame
Python loop); a 32-frame 32×32 clip takes about 0.7 ms (1 OpenCV thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal, overload

import cv2
import numpy as np

from lowres_har.transforms.flow import (
    _check_rgb_clip,
    _signed_from_uint8,
    _signed_to_uint8,
    _to_gray,
)

__all__ = ["mask_from_uint8", "mask_to_uint8", "slack_mask", "slack_motion_energy"]

_BORDER = cv2.BORDER_REFLECT_101
_MAX_CHANNELS = 128  # OpenCV 5 filters accept at most this many channels per call
_FLAT = 1e-6  # a raw mask whose peak |M| is at most this is flat: normalised to zeros
_PAD_MODES = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}


def _per_channels(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a 2-D OpenCV op to ``x`` ``(H, W, C)`` treating the C frames as channels."""
    parts = []
    for c0 in range(0, x.shape[2], _MAX_CHANNELS):
        chunk = np.ascontiguousarray(x[:, :, c0 : c0 + _MAX_CHANNELS])
        out = fn(chunk)
        parts.append(out.reshape(out.shape[0], out.shape[1], chunk.shape[2]))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def _size(size: Sequence[int] | int | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
        raise ValueError(
            f"slack_mask: size must be None or (H, W) with positive ints, got {size!r}"
        )
    return (int(size[0]), int(size[1]))


def _check_args(sigma: float, sobel_ksize: int, k: int) -> None:
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"slack_mask: sigma must be a finite number > 0, got {sigma!r}")
    if sobel_ksize not in (1, 3, 5, 7):
        raise ValueError(f"slack_mask: sobel_ksize must be 1, 3, 5 or 7, got {sobel_ksize!r}")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"slack_mask: k must be an int >= 1, got {k!r}")


def _rescale(x: np.ndarray, size: tuple[int, int], pad_mode: str) -> np.ndarray:
    """Pad ``(H, W, C)`` symmetrically to the aspect of ``size`` and resize to it."""
    if pad_mode not in _PAD_MODES:
        raise ValueError(
            f"slack_mask: pad_mode must be one of {sorted(_PAD_MODES)}, got {pad_mode!r}"
        )
    h, w = x.shape[:2]
    out_h, out_w = size
    if w * out_h > h * out_w:  # wider than the target: add rows
        ph, pw = max(h, round(w * out_h / out_w)), w
    else:
        ph, pw = h, max(w, round(h * out_w / out_h))
    top, left = (ph - h) // 2, (pw - w) // 2
    if (ph, pw) != (h, w):
        x = _per_channels(
            x,
            lambda c: cv2.copyMakeBorder(
                c, top, ph - h - top, left, pw - w - left, _PAD_MODES[pad_mode], value=0
            ),
        )
    if (ph, pw) == size:
        return x
    interp = cv2.INTER_AREA if out_h <= ph and out_w <= pw else cv2.INTER_LINEAR
    return _per_channels(x, lambda c: cv2.resize(c, (out_w, out_h), interpolation=interp))


def _smoothed_and_energy(
    frames: np.ndarray,
    sigma: float,
    sobel_ksize: int,
    k: int,
    size: Sequence[int] | int | None,
    pad_mode: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``(f*, A)``, both float32 ``(H', W', N)`` with the frames as the channel axis."""
    _check_rgb_clip(frames, "slack_mask")
    _check_args(sigma, sobel_ksize, k)
    target = _size(size)
    gray = _to_gray(frames).astype(np.float32) * np.float32(1 / 255)
    f = np.ascontiguousarray(gray.transpose(1, 2, 0))  # (H, W, N)

    def gauss(c: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(c, (3, 3), sigmaX=sigma, sigmaY=sigma, borderType=_BORDER)

    fstar = _per_channels(f, gauss)
    if target is not None:
        fstar = _rescale(fstar, target, pad_mode)
    n = fstar.shape[2]
    if n == 1:
        return fstar, np.zeros_like(fstar)

    def sobel(dx: int, dy: int) -> np.ndarray:
        return _per_channels(
            fstar, lambda c: cv2.Sobel(c, cv2.CV_32F, dx, dy, ksize=sobel_ksize, borderType=_BORDER)
        )

    grad = np.hypot(sobel(1, 0), sobel(0, 1))
    diff = np.abs(grad[:, :, 1:] - grad[:, :, :-1])  # g_1 … g_{N-1}
    ext = np.concatenate([diff, np.repeat(diff[:, :, -1:], k, axis=2)], axis=2)
    window = ext[:, :, 0:n].copy()
    for j in range(1, k):
        window += ext[:, :, j : j + n]
    window *= np.float32(1 / k)
    return fstar, _per_channels(window, gauss)


def slack_motion_energy(
    frames: np.ndarray,
    *,
    sigma: float = 0.8,
    sobel_ksize: int = 5,
    k: int = 3,
    size: Sequence[int] | int | None = None,
    pad_mode: str = "replicate",
) -> np.ndarray:
    """The motion frames ``A_n`` of eq. (6) (steps 1–5 of the module description).

    The clip's motion score, compared with ``tau`` by :func:`slack_mask`, is
    ``float(slack_motion_energy(...).mean(dtype=np.float64))``.

    Args:
        frames: uint8 RGB clip ``(N, H, W, 3)``.
        sigma: std of the 3×3 Gaussian ``G`` in pixels (> 0; the paper asks for < 1).
        sobel_ksize: Sobel aperture (1, 3, 5 or 7; paper 5).
        k: number of difference frames averaged per frame (>= 1; paper 3).
        size: ``(H', W')`` to rescale the smoothed frames to (aspect kept by padding), or
            ``None`` to keep ``(H, W)``.
        pad_mode: ``"replicate"`` (edge pixels, default: no artificial border edge) or
            ``"constant"`` (black) padding for ``size``.

    Returns:
        float32 ``(N, H', W')``, non-negative, in Sobel-magnitude units of ``[0, 1]`` frames.
    """
    _, energy = _smoothed_and_energy(frames, sigma, sobel_ksize, k, size, pad_mode)
    return np.ascontiguousarray(energy.transpose(2, 0, 1))


@overload
def slack_mask(
    frames: np.ndarray,
    *,
    sigma: float = ...,
    sobel_ksize: int = ...,
    k: int = ...,
    tau: float = ...,
    size: Sequence[int] | int | None = ...,
    pad_mode: str = ...,
    normalize: bool = ...,
    return_motion: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def slack_mask(
    frames: np.ndarray,
    *,
    sigma: float = ...,
    sobel_ksize: int = ...,
    k: int = ...,
    tau: float = ...,
    size: Sequence[int] | int | None = ...,
    pad_mode: str = ...,
    normalize: bool = ...,
    return_motion: Literal[True],
) -> tuple[np.ndarray, bool]: ...


def slack_mask(
    frames: np.ndarray,
    *,
    sigma: float = 0.8,
    sobel_ksize: int = 5,
    k: int = 3,
    tau: float = 0.1,
    size: Sequence[int] | int | None = None,
    pad_mode: str = "replicate",
    normalize: bool = True,
    return_motion: bool = False,
) -> np.ndarray | tuple[np.ndarray, bool]:
    """MSN slack foreground mask, one per frame (eqs. (6)–(7); steps in the module docstring).

    If the clip's motion score ``mean(A)`` (see :func:`slack_motion_energy`) is strictly greater
    than ``tau`` the mask is ``A_n ⊙ Laplacian(f*_n)``, otherwise ``Laplacian(f*_n)``, with the
    3×3 Laplacian of the smoothed (and rescaled) grayscale frame in ``[0, 1]`` intensities.

    Args:
        frames: uint8 RGB clip ``(N, H, W, 3)``, typically 32×32 LR or eLR upsampled to 32×32.
        sigma: std of the 3×3 Gaussian ``G`` in pixels (> 0; default 0.8, the paper asks < 1).
        sobel_ksize: Sobel aperture (1, 3, 5 or 7; paper 5).
        k: number of difference frames averaged into ``A_n`` (paper 3).
        tau: motion threshold on the mean of ``A`` (paper 0.1).
        size: ``(H', W')`` (or one int for a square) to rescale the smoothed frames to, padding
            to keep the aspect; ``None`` (default) keeps ``(H, W)``.
        pad_mode: ``"replicate"`` (default) or ``"constant"`` (black) padding for ``size``.
        normalize: divide by the clip's largest ``|M|`` so the mask lies in ``[-1, 1]``
            (default; zeros when that peak is at most 1e-6); ``False`` returns raw values.
        return_motion: also return whether the motion branch (eq. (7)) was taken.

    Returns:
        float32 ``(N, H', W')`` signed mask (``[-1, 1]`` when ``normalize``), or
        ``(mask, moved)`` with ``return_motion=True``.

    Raises:
        ValueError: not a non-empty uint8 ``(N, H, W, 3)`` clip, or an invalid setting.
    """
    if not (isinstance(tau, (int, float)) and math.isfinite(tau)):
        raise ValueError(f"slack_mask: tau must be a finite number, got {tau!r}")
    fstar, energy = _smoothed_and_energy(frames, sigma, sobel_ksize, k, size, pad_mode)
    moved = float(energy.mean(dtype=np.float64)) > tau
    mask = _per_channels(fstar, lambda c: cv2.Laplacian(c, cv2.CV_32F, ksize=1, borderType=_BORDER))
    if moved:
        mask *= energy
    if normalize:
        peak = float(np.abs(mask).max())
        if peak > _FLAT:
            mask *= np.float32(1 / peak)
            np.clip(mask, -1.0, 1.0, out=mask)
        else:  # float rounding on flat frames; do not blow it up to ±1
            mask[:] = 0
    out = np.ascontiguousarray(mask.transpose(2, 0, 1))
    return (out, moved) if return_motion else out


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """Quantise a normalised mask for a uint8 cache.

    Args:
        mask: float ``(T, H, W)`` (any shape works) in ``[-1, 1]``, i.e. :func:`slack_mask`
            with ``normalize=True``.

    Returns:
        uint8, same shape: ``round(127 * mask) + 128`` (0 is 128, ``±1`` is 255 / 1).

    Raises:
        ValueError: not a float array, non-finite values, or values outside ``[-1, 1]``.
    """
    return _signed_to_uint8(mask, "mask_to_uint8")


def mask_from_uint8(mask: np.ndarray) -> np.ndarray:
    """Inverse of :func:`mask_to_uint8`: uint8 → float32 ``(mask - 128) / 127`` in ``[-1, 1]``
    (error at most ``0.5 / 127``), same shape."""
    return _signed_from_uint8(mask, "mask_from_uint8")
