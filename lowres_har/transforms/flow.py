"""Dense optical flow of low-resolution clips (the MSN flow stream) and its uint8 storage format.

:func:`optical_flow` turns a uint8 RGB clip ``(T, H, W, 3)`` into a float32 flow clip
``(T, H, W, 2)`` with one of three OpenCV estimators:

- ``"tvl1"``: Dual TV-L1 (Zach et al. 2007), the estimator of the MSN paper
  (``cv2.optflow.DualTVL1OpticalFlow_create``);
- ``"farneback"``: polynomial expansion (``cv2.calcOpticalFlowFarneback``);
- ``"dis"``: dense inverse search (``cv2.DISOpticalFlow_create``).

Conventions (all methods):

- ``flow[t, y, x] = (dx, dy)``: the displacement in pixels of the point at ``(x, y)`` in frame
  ``t`` to where it is in frame ``t + 1`` (``x`` to the right, ``y`` down), estimated on the
  grayscale frames (``cv2.COLOR_RGB2GRAY``, ITU-R BT.601 weights), so
  ``gray[t + 1][y + dy, x + dx] ≈ gray[t][y, x]``;
- the last frame has no successor: ``last="zero"`` (default) gives it zero flow, ``"repeat"``
  copies ``flow[T - 2]``. A one-frame clip gets zero flow either way;
- each component is clipped to ``[-bound, bound]`` pixels and divided by ``bound`` so the
  output lies in ``[-1, 1]``; ``bound=None`` returns raw pixels. The default :data:`FLOW_BOUND`
  of 3 px comes from flows measured on 12 real clips of ``../shared/data/real_clips`` degraded
  to 32×32 (31 frame pairs each, default TV-L1): 99.9 % of the components lie within 1.7 px
  for consecutive frames, 2.7 px for every 2nd frame and 3.2 px for every 4th; 0.006 %, 0.04 %
  and 0.14 % of them exceed 3 px (Farneback and DIS: at most 0.43 %, every 4th frame). 3 px
  still leaves a uint8 step of 0.024 px.

:func:`flow_to_uint8` / :func:`flow_from_uint8` store normalised flow as uint8 (``0`` ↔ ``128``,
``±1`` ↔ ``128 ± 127``) with a round-trip error of at most ``0.5 / 127``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

__all__ = [
    "DIS_DEFAULTS",
    "FARNEBACK_DEFAULTS",
    "FLOW_BOUND",
    "FLOW_METHODS",
    "TVL1_DEFAULTS",
    "TVL1_OPENCV_DEFAULTS",
    "flow_from_uint8",
    "flow_to_uint8",
    "optical_flow",
]

FLOW_METHODS = ("tvl1", "farneback", "dis")
"""Names accepted by :func:`optical_flow`'s ``method``."""

FLOW_BOUND = 3.0
"""Default clipping bound in pixels (of the frames the flow is computed on, e.g. 32×32)."""

TVL1_OPENCV_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "tau": 0.25,
        "lambda_": 0.15,
        "theta": 0.3,
        "nscales": 5,
        "warps": 5,
        "epsilon": 0.01,
        "innnerIterations": 30,
        "outerIterations": 10,
        "scaleStep": 0.8,
        "gamma": 0.0,
        "medianFiltering": 5,
        "useInitialFlow": False,
    }
)
"""OpenCV's own Dual TV-L1 settings (the names are those of ``DualTVL1OpticalFlow_create``,
including OpenCV's spelling ``innnerIterations`` and ``lambda_`` for the keyword ``lambda``)."""

TVL1_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {**TVL1_OPENCV_DEFAULTS, "nscales": 3, "warps": 2, "epsilon": 0.03}
)
"""The fast Dual TV-L1 setting :func:`optical_flow` uses: OpenCV's defaults with 3 scales,
2 warps and a stopping threshold ``epsilon`` of 0.03.

Measured on 4 real clips degraded to 32×32 (32 frames, every 2nd frame; 1 OpenCV thread on a
shared 2-core machine): 3.7 ms per frame pair against 26 ms for :data:`TVL1_OPENCV_DEFAULTS`
(7× faster). Mean end-point error against the OpenCV defaults: 0.084 px on those LR clips and
0.085 px on the same clips as eLR 12×16 upsampled to 32×32 (mean flow magnitude 0.30 / 0.25 px).
A textured square translating by 1–2 px per frame is recovered within 0.08 px (OpenCV defaults:
0.02 px). ``epsilon=0.05`` would be faster still (~2 ms) but stops early and underestimates that
translation by ~15 %.
"""

FARNEBACK_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "pyr_scale": 0.5,
        "levels": 2,
        "winsize": 7,
        "iterations": 3,
        "poly_n": 5,
        "poly_sigma": 1.1,
        "flags": 0,
    }
)
"""Farneback settings for 32×32 frames (the arguments of ``cv2.calcOpticalFlowFarneback``).
The usual 15-pixel window over-smooths a 32×32 frame (synthetic end-point error 0.81 px against
0.61 px with ``winsize=7``)."""

DIS_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "preset": "medium",
        "finest_scale": 0,
        "patch_size": 4,
        "patch_stride": 2,
    }
)
"""DIS settings for 32×32 frames: the ``"medium"`` preset refined down to full resolution
(``finest_scale=0``) with 4×4 patches every 2 pixels. OpenCV's presets stop at a quarter of the
resolution with 8×8 patches, an 8×8 grid of estimates for a 32×32 frame (synthetic end-point
error 0.52 px against 0.44 px with these settings)."""

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

# DIS keyword -> setter on the cv2.DISOpticalFlow object
_DIS_SETTERS = {
    "finest_scale": "setFinestScale",
    "coarsest_scale": "setCoarsestScale",
    "patch_size": "setPatchSize",
    "patch_stride": "setPatchStride",
    "gradient_descent_iterations": "setGradientDescentIterations",
    "variational_refinement_iterations": "setVariationalRefinementIterations",
    "variational_refinement_alpha": "setVariationalRefinementAlpha",
    "variational_refinement_delta": "setVariationalRefinementDelta",
    "variational_refinement_gamma": "setVariationalRefinementGamma",
    "variational_refinement_epsilon": "setVariationalRefinementEpsilon",
    "use_mean_normalization": "setUseMeanNormalization",
    "use_spatial_propagation": "setUseSpatialPropagation",
}

_LAST_MODES = ("zero", "repeat")


def _check_rgb_clip(frames: np.ndarray, what: str) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise ValueError(f"{what}: expected an RGB clip (T, H, W, 3), got {shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"{what}: expected a uint8 clip, got dtype {frames.dtype}")
    if min(frames.shape[:3]) < 1:
        raise ValueError(f"{what}: expected a non-empty clip, got shape {frames.shape}")


def _to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(T, H, W, 3)`` → uint8 grayscale ``(T, H, W)`` (BT.601, one OpenCV call)."""
    t, h, w, _ = frames.shape
    flat = np.ascontiguousarray(frames).reshape(t * h, w, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(t, h, w)


def _settings(
    method: str, params: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = sorted(
        set(params) - set(defaults) - (set(_DIS_SETTERS) if method == "dis" else set())
    )
    if unknown:
        names = sorted(set(defaults) | (set(_DIS_SETTERS) if method == "dis" else set()))
        raise TypeError(
            f"optical_flow(method={method!r}): unknown setting(s) {unknown}; valid: {names}"
        )
    return {**defaults, **params}


PairFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def _tvl1(settings: dict[str, Any]) -> tuple[PairFn, bool]:
    algo = cv2.optflow.DualTVL1OpticalFlow_create(**settings)  # type: ignore[attr-defined]

    def pair(a: np.ndarray, b: np.ndarray, init: np.ndarray | None) -> np.ndarray:
        return algo.calc(a, b, init)

    return pair, bool(settings["useInitialFlow"])


def _farneback(settings: dict[str, Any]) -> tuple[PairFn, bool]:
    s = settings
    args = (
        float(s["pyr_scale"]),
        int(s["levels"]),
        int(s["winsize"]),
        int(s["iterations"]),
        int(s["poly_n"]),
        float(s["poly_sigma"]),
        int(s["flags"]),
    )

    def pair(a: np.ndarray, b: np.ndarray, init: np.ndarray | None) -> np.ndarray:
        # None for the flow argument is accepted at runtime (a fresh array is returned)
        return cv2.calcOpticalFlowFarneback(a, b, init, *args)  # type: ignore[arg-type]

    return pair, bool(args[-1] & cv2.OPTFLOW_USE_INITIAL_FLOW)


def _dis(settings: dict[str, Any]) -> tuple[PairFn, bool]:
    preset = settings.pop("preset")
    if isinstance(preset, str):
        if preset not in _DIS_PRESETS:
            raise ValueError(
                f"optical_flow(method='dis'): preset must be one of {sorted(_DIS_PRESETS)}, "
                f"got {preset!r}"
            )
        preset = _DIS_PRESETS[preset]
    algo = cv2.DISOpticalFlow_create(int(preset))  # type: ignore[attr-defined]
    for name, value in settings.items():
        getattr(algo, _DIS_SETTERS[name])(value)

    def pair(a: np.ndarray, b: np.ndarray, init: np.ndarray | None) -> np.ndarray:
        return algo.calc(a, b, None)

    return pair, False


_METHODS: dict[str, tuple[Mapping[str, Any], Callable[[dict[str, Any]], tuple[PairFn, bool]]]] = {
    "tvl1": (TVL1_DEFAULTS, _tvl1),
    "farneback": (FARNEBACK_DEFAULTS, _farneback),
    "dis": (DIS_DEFAULTS, _dis),
}


def optical_flow(
    frames: np.ndarray,
    method: str = "tvl1",
    *,
    bound: float | None = FLOW_BOUND,
    last: str = "zero",
    **params: Any,
) -> np.ndarray:
    """Dense optical flow between consecutive frames of a clip.

    ``flow[t]`` is the displacement ``(dx, dy)`` in pixels from frame ``t`` to frame ``t + 1``,
    estimated on the grayscale frames: ``gray[t + 1][y + dy, x + dx] ≈ gray[t][y, x]``, ``dx``
    positive to the right, ``dy`` positive downwards. The last frame has no successor:
    ``last="zero"`` gives it zero flow, ``last="repeat"`` copies ``flow[T - 2]`` (a one-frame clip
    gets zero flow either way). With ``bound`` set, each component is clipped to
    ``[-bound, bound]`` pixels and divided by ``bound``, so the result lies in ``[-1, 1]``
    (store it with :func:`flow_to_uint8`); ``bound=None`` keeps raw pixels.

    One OpenCV estimator object is created per call and reused for all ``T - 1`` pairs.

    Cost per 32×32 frame pair measured on real clips (1 OpenCV thread on a shared 2-core
    machine; ratios matter more than absolute numbers): TV-L1 fast default
    (:data:`TVL1_DEFAULTS`) 3.7 ms, TV-L1 with OpenCV's defaults (:data:`TVL1_OPENCV_DEFAULTS`)
    26 ms, Farneback 0.17 ms, DIS 0.8 ms.

    Args:
        frames: uint8 RGB clip ``(T, H, W, 3)``, typically 32×32 (LR, or eLR upsampled to 32×32).
        method: ``"tvl1"`` (the MSN paper's Dual TV-L1, default), ``"farneback"`` or ``"dis"``.
        bound: clipping bound in pixels (> 0), or ``None`` for raw, unclipped pixels.
        last: ``"zero"`` or ``"repeat"``: the flow given to the last frame.
        **params: estimator settings overriding the method's defaults, named as in OpenCV:

            - ``tvl1`` (:data:`TVL1_DEFAULTS`): ``tau``, ``lambda_``, ``theta``, ``nscales``,
              ``warps``, ``epsilon``, ``innnerIterations`` (OpenCV's spelling),
              ``outerIterations``, ``scaleStep``, ``gamma``, ``medianFiltering``,
              ``useInitialFlow``. Pass ``**TVL1_OPENCV_DEFAULTS`` for OpenCV's full setting;
            - ``farneback`` (:data:`FARNEBACK_DEFAULTS`): ``pyr_scale``, ``levels``,
              ``winsize``, ``iterations``, ``poly_n``, ``poly_sigma``, ``flags``;
            - ``dis`` (:data:`DIS_DEFAULTS`): ``preset`` (``"ultrafast"``, ``"fast"``,
              ``"medium"``), ``finest_scale``, ``coarsest_scale``, ``patch_size``,
              ``patch_stride``, ``gradient_descent_iterations``,
              ``variational_refinement_iterations``, ``variational_refinement_alpha``,
              ``variational_refinement_delta``, ``variational_refinement_gamma``,
              ``variational_refinement_epsilon``, ``use_mean_normalization``,
              ``use_spatial_propagation``. DIS refuses frames too small for its patches (below
              about 6 pixels a side with the default 4×4 patches).

            With TV-L1 ``useInitialFlow=True`` (or Farneback ``flags`` containing
            ``cv2.OPTFLOW_USE_INITIAL_FLOW``) the flow of pair ``t - 1`` initialises pair ``t``
            (zeros for the first pair).

    Returns:
        float32 ``(T, H, W, 2)``: ``(dx, dy)`` in ``[-1, 1]`` (units of ``bound`` pixels), or in
        pixels when ``bound`` is ``None``.

    Raises:
        ValueError: not a non-empty uint8 ``(T, H, W, 3)`` clip, an unknown ``method`` or
            ``last``, a non-positive ``bound``, a setting of the wrong type, frames too small
            for the estimator (the message quotes OpenCV), or non-finite flow.
        TypeError: a setting that ``method`` does not have.
    """
    _check_rgb_clip(frames, "optical_flow")
    if method not in _METHODS:
        raise ValueError(f"optical_flow: method must be one of {FLOW_METHODS}, got {method!r}")
    if last not in _LAST_MODES:
        raise ValueError(f"optical_flow: last must be one of {_LAST_MODES}, got {last!r}")
    if bound is not None:
        bound = float(bound)
        if not math.isfinite(bound) or bound <= 0:
            raise ValueError(
                f"optical_flow: bound must be a finite number > 0 or None, got {bound}"
            )
    defaults, build = _METHODS[method]
    settings = _settings(method, params, defaults)
    try:
        pair, chain = build(settings)
    except (cv2.error, TypeError, ValueError) as err:
        raise ValueError(
            f"optical_flow(method={method!r}): invalid settings {settings}: {err}"
        ) from err

    gray = _to_gray(frames)
    t, h, w = gray.shape
    flow = np.zeros((t, h, w, 2), np.float32)
    prev = np.zeros((h, w, 2), np.float32) if chain else None
    for i in range(t - 1):
        try:
            out = pair(gray[i], gray[i + 1], None if prev is None else prev.copy())
        except cv2.error as err:
            raise ValueError(
                f"optical_flow(method={method!r}): OpenCV failed on frame pair {i}->{i + 1} "
                f"of a {h}x{w} clip: {str(err).strip().splitlines()[-1]}"
            ) from err
        flow[i] = out
        if prev is not None:
            prev = flow[i]
    if not np.isfinite(flow).all():
        bad = int(np.argwhere(~np.isfinite(flow))[0][0])
        raise ValueError(f"optical_flow(method={method!r}): non-finite flow for frame pair {bad}")
    if last == "repeat" and t > 1:
        flow[-1] = flow[-2]
    if bound is not None:
        np.clip(flow, -bound, bound, out=flow)
        flow /= np.float32(bound)
    return flow


def _signed_to_uint8(x: np.ndarray, what: str) -> np.ndarray:
    """float ``[-1, 1]`` → uint8 ``round(127 x) + 128`` (so 0 ↔ 128 exactly, ±1 ↔ 255 / 1)."""
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        kind = getattr(x, "dtype", type(x).__name__)
        raise ValueError(f"{what}: expected a float numpy array, got {kind}")
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{what}: input contains NaN or infinite values")
    if x.size and float(np.abs(x).max()) > 1 + 1e-6:
        raise ValueError(
            f"{what}: values must lie in [-1, 1] (normalised), got max |x| = "
            f"{float(np.abs(x).max()):.4g}"
        )
    q = np.rint(np.clip(x, -1.0, 1.0) * 127.0) + 128.0
    return q.astype(np.uint8)


def _signed_from_uint8(q: np.ndarray, what: str) -> np.ndarray:
    """Inverse of :func:`_signed_to_uint8`: uint8 → float32 ``(q - 128) / 127`` clipped to ±1."""
    if not isinstance(q, np.ndarray) or q.dtype != np.uint8:
        kind = getattr(q, "dtype", type(q).__name__)
        raise ValueError(f"{what}: expected a uint8 numpy array, got {kind}")
    x = (q.astype(np.float32) - np.float32(128.0)) / np.float32(127.0)
    return np.maximum(x, np.float32(-1.0), out=x)


def flow_to_uint8(flow: np.ndarray) -> np.ndarray:
    """Quantise normalised flow for a uint8 cache.

    Args:
        flow: float ``(T, H, W, 2)`` (any shape works) with values in ``[-1, 1]``, i.e. the
            output of :func:`optical_flow` with a ``bound``.

    Returns:
        uint8, same shape: ``round(127 * flow) + 128`` (zero flow is 128, ``±1`` is 255 / 1).

    Raises:
        ValueError: not a float array, non-finite values, or values outside ``[-1, 1]`` (raw
            pixel flow must be normalised first: compute it with a ``bound``).
    """
    return _signed_to_uint8(flow, "flow_to_uint8")


def flow_from_uint8(flow: np.ndarray, bound: float | None = None) -> np.ndarray:
    """Inverse of :func:`flow_to_uint8` (error at most ``0.5 / 127`` of the normalised value).

    Args:
        flow: uint8 ``(T, H, W, 2)`` (any shape works).
        bound: when given, multiply by it to return pixels (the bound the flow was computed
            with); ``None`` returns normalised flow in ``[-1, 1]``.

    Returns:
        float32, same shape: ``(flow - 128) / 127`` (clipped at -1), times ``bound`` if given.
    """
    x = _signed_from_uint8(flow, "flow_from_uint8")
    if bound is not None:
        x *= np.float32(bound)
    return x
