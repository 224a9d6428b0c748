"""RandAugment for uint8 RGB clips, implemented with numpy and OpenCV.

RandAugment (Cubuk et al., 2020) applies ``num_ops`` operations drawn uniformly from a fixed list,
all at one shared magnitude. For video the draw (ops and signs) is made once per clip and every
frame receives exactly the same operation, so motion is not disturbed by per-frame jitter.

Operations whose mapping depends on image statistics (``auto_contrast``, ``equalize``,
``contrast``) compute those statistics over the whole clip, so every frame gets the same pixel
mapping (no brightness flicker between frames). Geometric operations act about the frame centre,
and translation is a fraction of the frame size rounded to whole pixels, so they stay sensible on
12×16 frames. torchvision's image operators are not used (its C extension does not load here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

__all__ = ["RANDAUGMENT_OPS", "RandAugment", "randaugment_op"]

#: The RandAugment operation list, in the paper's order.
RANDAUGMENT_OPS: tuple[str, ...] = (
    "identity",
    "auto_contrast",
    "equalize",
    "rotate",
    "solarize",
    "color",
    "posterize",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)

#: Largest rotation (degrees), shear (tan of the angle) and colour-enhance factor offset.
_MAX_ROTATE = 30.0
_MAX_SHEAR = 0.3
_MAX_ENHANCE = 0.9

_GEOM_INTERP = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    np.rint(x, out=x)
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


def _flat(clip: np.ndarray) -> np.ndarray:
    """The clip as one tall image ``(T * H, W, C)`` for pixel-wise OpenCV calls (one call, no loop)."""
    t, h, w, c = clip.shape
    return np.ascontiguousarray(clip).reshape(t * h, w, c)


def _apply_lut(clip: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map intensities with uint8 ``lut`` ``(256,)`` (all channels) or ``(C, 256)`` (per channel)."""
    table = lut if lut.ndim == 1 else np.ascontiguousarray(lut.T).reshape(1, 256, -1)
    return cv2.LUT(_flat(clip), table).reshape(clip.shape)


def _histograms(clip: np.ndarray) -> np.ndarray:
    """Per-channel intensity histograms over the whole clip, ``(C, 256)`` int64."""
    flat = _flat(clip)
    hists = [cv2.calcHist([flat], [c], None, [256], [0, 256]) for c in range(clip.shape[3])]
    return np.rint(np.stack([h.reshape(256) for h in hists])).astype(np.int64)


def _enhance_lut(factor: float, centre: float) -> np.ndarray:
    """LUT of ``centre + factor * (v - centre)``, rounded and clipped to uint8."""
    v = np.arange(256, dtype=np.float32)
    return _to_uint8(np.float32(centre) + np.float32(factor) * (v - np.float32(centre)))


def _blend(clip: np.ndarray, degenerate: np.ndarray, factor: float) -> np.ndarray:
    """``degenerate + factor * (clip - degenerate)``, rounded and saturated to uint8 (PIL's
    ``ImageEnhance`` semantics); ``degenerate`` has the clip's shape."""
    out = cv2.addWeighted(_flat(clip), factor, _flat(degenerate), 1.0 - factor, 0.0)
    return out.reshape(clip.shape)


def _auto_contrast(clip: np.ndarray) -> np.ndarray:
    v = np.arange(256, dtype=np.float32)
    luts = []
    for hist in _histograms(clip):
        present = np.flatnonzero(hist)
        lo, hi = int(present[0]), int(present[-1])
        if hi > lo:
            luts.append(_to_uint8((v - lo) * np.float32(255.0 / (hi - lo))))
        else:
            luts.append(np.arange(256, dtype=np.uint8))
    return _apply_lut(clip, np.stack(luts))


def _equalize(clip: np.ndarray) -> np.ndarray:
    luts = []
    for hist in _histograms(clip):
        present = np.flatnonzero(hist)
        # PIL's rule (spread all counts but the brightest bin's over 255 steps) with a real-valued
        # step: PIL's integer step is 0, i.e. no equalisation at all, below ~256 pixels (12×16)
        step = (float(hist.sum()) - float(hist[present[-1]])) / 255.0
        if step == 0:
            luts.append(np.arange(256, dtype=np.uint8))
            continue
        before = np.concatenate(([0], np.cumsum(hist)[:-1])).astype(np.float64)
        luts.append(np.minimum(np.floor((before + step / 2) / step), 255).astype(np.uint8))
    return _apply_lut(clip, np.stack(luts))


#: PIL's SMOOTH filter, the "blurred" image sharpness blends away from.
_SMOOTH = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13.0


def _sharpness(clip: np.ndarray, factor: float) -> np.ndarray:
    h, w = clip.shape[1:3]
    if h < 3 or w < 3:
        return clip
    # filtering the stacked frames only mixes frames on their first/last rows, which PIL's
    # sharpness leaves unfiltered anyway (the degenerate image keeps the original border)
    degenerate = cv2.filter2D(_flat(clip), -1, _SMOOTH).reshape(clip.shape)
    degenerate[:, [0, -1]] = clip[:, [0, -1]]
    degenerate[:, :, [0, -1]] = clip[:, :, [0, -1]]
    return _blend(clip, degenerate, factor)


def _grey(clip: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of the stacked frames, uint8 ``(T * H, W)``."""
    return cv2.cvtColor(_flat(clip), cv2.COLOR_RGB2GRAY)


def _color(clip: np.ndarray, factor: float) -> np.ndarray:
    grey = cv2.cvtColor(_grey(clip), cv2.COLOR_GRAY2RGB).reshape(clip.shape)
    return _blend(clip, grey, factor)


def _contrast(clip: np.ndarray, factor: float) -> np.ndarray:
    mean = float(np.rint(cv2.mean(_grey(clip))[0]))
    return _apply_lut(clip, _enhance_lut(factor, mean))


def _warp(
    clip: np.ndarray, matrix: np.ndarray, interpolation: str, fill: tuple[int, ...]
) -> np.ndarray:
    h, w, c = clip.shape[1:]
    flag = _GEOM_INTERP[interpolation]
    border = tuple(float(v) for v in fill) * (c if len(fill) == 1 else 1)
    out = np.empty_like(clip)
    for t in range(clip.shape[0]):
        r = cv2.warpAffine(
            clip[t],
            matrix,
            (w, h),
            flags=flag,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=border,
        )
        out[t] = r.reshape(h, w, c)
    return out


def _shift(clip: np.ndarray, dy: int, dx: int, fill: tuple[int, ...]) -> np.ndarray:
    """Move the content by ``dy`` rows and ``dx`` columns (positive: down / right)."""
    h, w = clip.shape[1:3]
    out = np.empty_like(clip)
    out[...] = np.asarray(fill, dtype=np.uint8)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y = slice(max(-dy, 0), h - max(dy, 0))
    dst_y = slice(max(dy, 0), h - max(-dy, 0))
    src_x = slice(max(-dx, 0), w - max(dx, 0))
    dst_x = slice(max(dx, 0), w - max(-dx, 0))
    out[:, dst_y, dst_x] = clip[:, src_y, src_x]
    return out


def randaugment_op(
    clip: np.ndarray,
    name: str,
    level: float,
    sign: int = 1,
    *,
    interpolation: str = "nearest",
    fill: int | Sequence[int] = 0,
    max_translate: float = 0.45,
) -> np.ndarray:
    """Apply one RandAugment operation identically to every frame of ``clip``.

    Args:
        clip: uint8 RGB ``(T, H, W, 3)``.
        name: one of :data:`RANDAUGMENT_OPS`.
        level: magnitude in ``[0, 1]`` (0 is the identity for every op).
        sign: ``+1`` or ``-1``, the direction of signed ops (rotate, shear, translate and the
            colour/contrast/brightness/sharpness factors ``1 ± 0.9 level``); ignored by the others.
        interpolation: ``"nearest"`` (default, keeps tiny frames crisp) or ``"bilinear"`` for
            rotate and shear.
        fill: value of pixels uncovered by geometric ops, one or one per channel.
        max_translate: translation at ``level = 1`` as a fraction of the frame height / width.

    Returns:
        uint8 ``(T, H, W, 3)``.

    Magnitudes at ``level = 1``: rotate 30°, shear 0.3, translate ``max_translate`` of the size,
    enhance factors 1 ± 0.9, posterize to 4 bits, solarize threshold 0 (inverts everything).
    """
    if name not in _OPS:
        raise ValueError(f"unknown RandAugment op {name!r}; choose from {RANDAUGMENT_OPS}")
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"RandAugment level must be in [0, 1], got {level}")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign}")
    if interpolation not in _GEOM_INTERP:
        raise ValueError(
            f"interpolation must be one of {sorted(_GEOM_INTERP)}, got {interpolation!r}"
        )
    fill_t = (int(fill),) if isinstance(fill, (int, np.integer)) else tuple(int(v) for v in fill)
    if len(fill_t) not in (1, 3) or not all(0 <= v <= 255 for v in fill_t):
        raise ValueError(f"fill must be an int in [0, 255] or three of them, got {fill!r}")
    _check_rgb(clip)
    return _OPS[name](clip, level, sign, interpolation, fill_t, max_translate)


def _check_rgb(clip: np.ndarray) -> None:
    if not isinstance(clip, np.ndarray) or clip.ndim != 4 or clip.shape[3] != 3:
        shape = getattr(clip, "shape", type(clip).__name__)
        raise ValueError(f"RandAugment expects an RGB clip (T, H, W, 3), got {shape}")
    if clip.dtype != np.uint8:
        raise ValueError(f"RandAugment expects a uint8 clip, got dtype {clip.dtype}")


_Op = Callable[[np.ndarray, float, int, str, tuple[int, ...], float], np.ndarray]


def _rotate(
    clip: np.ndarray, lv: float, s: int, it: str, fill: tuple[int, ...], _: float
) -> np.ndarray:
    h, w = clip.shape[1:3]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), s * _MAX_ROTATE * lv, 1.0)
    return _warp(clip, m, it, fill)


def _shear_x(
    clip: np.ndarray, lv: float, s: int, it: str, fill: tuple[int, ...], _: float
) -> np.ndarray:
    k = s * _MAX_SHEAR * lv
    cy = (clip.shape[1] - 1) / 2
    return _warp(clip, np.array([[1.0, k, -k * cy], [0.0, 1.0, 0.0]]), it, fill)


def _shear_y(
    clip: np.ndarray, lv: float, s: int, it: str, fill: tuple[int, ...], _: float
) -> np.ndarray:
    k = s * _MAX_SHEAR * lv
    cx = (clip.shape[2] - 1) / 2
    return _warp(clip, np.array([[1.0, 0.0, 0.0], [k, 1.0, -k * cx]]), it, fill)


def _translate_x(
    clip: np.ndarray, lv: float, s: int, it: str, fill: tuple[int, ...], frac: float
) -> np.ndarray:
    return _shift(clip, 0, s * round(frac * lv * clip.shape[2]), fill)


def _translate_y(
    clip: np.ndarray, lv: float, s: int, it: str, fill: tuple[int, ...], frac: float
) -> np.ndarray:
    return _shift(clip, s * round(frac * lv * clip.shape[1]), 0, fill)


def _solarize_op(clip: np.ndarray, lv: float, *_: object) -> np.ndarray:
    # invert intensities >= threshold: 256 (nothing) at level 0, 0 (everything) at level 1
    threshold = round(256 * (1.0 - lv))
    v = np.arange(256)
    return _apply_lut(clip, np.where(v >= threshold, 255 - v, v).astype(np.uint8))


def _posterize_op(clip: np.ndarray, lv: float, *_: object) -> np.ndarray:
    bits = 8 - round(4 * lv)
    mask = (0xFF << (8 - bits)) & 0xFF
    return _apply_lut(clip, (np.arange(256) & mask).astype(np.uint8))


def _factor(lv: float, s: int) -> float:
    return 1.0 + s * _MAX_ENHANCE * lv


_OPS: dict[str, _Op] = {
    "identity": lambda clip, *_: clip,
    "auto_contrast": lambda clip, *_: _auto_contrast(clip),
    "equalize": lambda clip, *_: _equalize(clip),
    "rotate": _rotate,
    "solarize": _solarize_op,
    "color": lambda clip, lv, s, *_: _color(clip, _factor(lv, s)),
    "posterize": _posterize_op,
    "contrast": lambda clip, lv, s, *_: _contrast(clip, _factor(lv, s)),
    "brightness": lambda clip, lv, s, *_: _apply_lut(clip, _enhance_lut(_factor(lv, s), 0.0)),
    "sharpness": lambda clip, lv, s, *_: _sharpness(clip, _factor(lv, s)),
    "shear_x": _shear_x,
    "shear_y": _shear_y,
    "translate_x": _translate_x,
    "translate_y": _translate_y,
}


class RandAugment:
    """RandAugment for uint8 RGB clips: ``num_ops`` random ops at one magnitude, same for all frames.

    Each call draws ``num_ops`` operations uniformly (with replacement) from ``ops`` and one sign
    per operation, once per clip, then applies them in order to every frame with
    :func:`randaugment_op`.

    Args:
        num_ops: operations per clip.
        magnitude: magnitude bin in ``[0, num_magnitude_bins - 1]``; the op strength is
            ``magnitude / (num_magnitude_bins - 1)`` of its maximum (9 of 31 bins ≈ 0.3).
        num_magnitude_bins: number of magnitude bins (31 as in torchvision, 11 in the paper).
        ops: subset of :data:`RANDAUGMENT_OPS` to draw from (default: all 14).
        interpolation: ``"nearest"`` or ``"bilinear"`` for rotate and shear.
        fill: value of pixels uncovered by geometric ops, one or one per channel.
        max_translate: translation at full magnitude as a fraction of the frame size.
        generator: torch generator to draw from (default: torch's global RNG).
    """

    def __init__(
        self,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        *,
        ops: Sequence[str] | None = None,
        interpolation: str = "nearest",
        fill: int | Sequence[int] = 0,
        max_translate: float = 0.45,
        generator: torch.Generator | None = None,
    ) -> None:
        if num_ops < 0:
            raise ValueError(f"num_ops must be >= 0, got {num_ops}")
        if num_magnitude_bins < 2:
            raise ValueError(f"num_magnitude_bins must be >= 2, got {num_magnitude_bins}")
        if not 0 <= magnitude <= num_magnitude_bins - 1:
            raise ValueError(f"magnitude must be in [0, {num_magnitude_bins - 1}], got {magnitude}")
        self.ops = tuple(RANDAUGMENT_OPS if ops is None else ops)
        unknown = [o for o in self.ops if o not in _OPS]
        if unknown or not self.ops:
            raise ValueError(f"ops must be a non-empty subset of {RANDAUGMENT_OPS}, got {ops!r}")
        if interpolation not in _GEOM_INTERP:
            raise ValueError(
                f"interpolation must be one of {sorted(_GEOM_INTERP)}, got {interpolation!r}"
            )
        if not 0.0 <= max_translate <= 1.0:
            raise ValueError(f"max_translate must be in [0, 1], got {max_translate}")
        self.num_ops = int(num_ops)
        self.magnitude = int(magnitude)
        self.num_magnitude_bins = int(num_magnitude_bins)
        self.interpolation = interpolation
        self.fill = fill
        self.max_translate = float(max_translate)
        self.generator = generator

    @property
    def level(self) -> float:
        """Op strength in ``[0, 1]``: ``magnitude / (num_magnitude_bins - 1)``."""
        return self.magnitude / (self.num_magnitude_bins - 1)

    def draw(self) -> list[tuple[str, int]]:
        """Draw the ``(op name, sign)`` pairs for one clip."""
        picks = []
        for _ in range(self.num_ops):
            index = int(torch.randint(len(self.ops), (), generator=self.generator))
            sign = 1 if float(torch.rand((), generator=self.generator)) < 0.5 else -1
            picks.append((self.ops[index], sign))
        return picks

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` → uint8 ``(T, H, W, 3)``."""
        _check_rgb(clip)
        for name, sign in self.draw():
            clip = randaugment_op(
                clip,
                name,
                self.level,
                sign,
                interpolation=self.interpolation,
                fill=self.fill,
                max_translate=self.max_translate,
            )
        return clip

    def __repr__(self) -> str:
        ops = "" if self.ops == RANDAUGMENT_OPS else f", ops={list(self.ops)}"
        return (
            f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
            f"num_magnitude_bins={self.num_magnitude_bins}{ops})"
        )
