"""Turn one decoded clip into the named tensors a batch holds (``video``, ``video_hr``, ...).

A *view* is a resolution the clip is shown at. ``{"video": {"size": [12, 16], "upsample_to":
[32, 32]}}`` degrades the frames to 12×16 (centre crop to 4:3, area averaging) and resizes them
back to the 32×32 network input. Spatial augmentation (crop, flip) is drawn once and applied to
the source frames before degradation, so every view shows the same content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from lowres_har.data.sampling import gather_frames
from lowres_har.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    CenterCrop,
    Degrade,
    GaussianNoise,
    RandAugment,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomShortSideScale,
    randaugment_op,
    resize_clip,
)

__all__ = [
    "DEFAULT_VIEWS",
    "STREAM_KINDS",
    "ClipTransform",
    "StreamSpec",
    "ViewDegrader",
    "ViewSpec",
    "parse_streams",
    "parse_views",
]

_CV_INTERP = {
    "area": cv2.INTER_AREA,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}

#: eLR 12×16 upsampled to the 32×32 network input.
DEFAULT_VIEWS: dict[str, dict[str, Any]] = {"video": {"size": [12, 16], "upsample_to": [32, 32]}}


@dataclass(frozen=True)
class ViewSpec:
    """One view: what a camera of ``size`` ``(H, W)`` records, then (optionally) the resize to the
    network input ``upsample_to``.

    The deterministic part (aspect handling, lens blur, area downsampling, compression artefacts)
    is :meth:`degrade`; a preprocessing cache stores its output. Sensor noise and the upsampling
    happen when a clip is loaded.

    Attributes:
        size: recorded ``(H, W)``.
        upsample_to: network input ``(H, W)``, or ``None`` to feed ``size`` directly.
        interpolation: downsampling mode (``"area"`` averages pixels like a coarser sensor).
        upsample_interpolation: upsampling mode.
        aspect: ``"crop"`` (centre-crop to the target aspect), ``"pad"`` (pad with black) or
            ``"stretch"`` (squeeze the whole frame).
        blur_sigma: Gaussian lens blur, in output pixels (0: none).
        jpeg_quality: JPEG compression artefacts at this quality 1–100 (``None``: none).
        noise: Gaussian sensor noise std in 0–255 units (0: none), or a ``(low, high)`` range
            the std is drawn from per clip. Fresh noise per clip in training; in evaluation it
            is seeded by the item index, so metrics are reproducible.
    """

    size: tuple[int, int]
    upsample_to: tuple[int, int] | None = None
    interpolation: str = "area"
    upsample_interpolation: str = "bilinear"
    aspect: str = "crop"
    blur_sigma: float = 0.0
    jpeg_quality: int | None = None
    noise: float | tuple[float, float] = 0.0

    @property
    def has_noise(self) -> bool:
        """Whether the view adds sensor noise."""
        return max(self.noise if isinstance(self.noise, tuple) else (self.noise,)) > 0

    @property
    def output_size(self) -> tuple[int, int]:
        """``(H, W)`` of the tensor the model receives."""
        return self.upsample_to or self.size

    def degrade_spec(self) -> dict[str, Any]:
        """The deterministic part as a JSON-able dict (what a cache of this view depends on)."""
        return {
            "size": list(self.size),
            "interpolation": self.interpolation,
            "aspect": self.aspect,
            "blur_sigma": self.blur_sigma,
            "jpeg_quality": self.jpeg_quality,
        }


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{what} must be an int or [H, W], got {value!r}")


_VIEW_KEYS = {
    "size",
    "upsample_to",
    "interpolation",
    "upsample_interpolation",
    "aspect",
    "crop_to_aspect",
    "blur_sigma",
    "jpeg_quality",
    "noise",
}


def parse_views(views: Mapping[str, Mapping[str, Any]] | None) -> dict[str, ViewSpec]:
    """Validate a ``{name: {size, upsample_to, aspect, blur_sigma, ...}}`` mapping from a config.

    ``crop_to_aspect: false`` is accepted as the older spelling of ``aspect: stretch``.
    """
    views = DEFAULT_VIEWS if views is None else views
    if not views:
        raise ValueError("views must name at least one view (e.g. 'video')")
    out = {}
    for name, spec in views.items():
        unknown = set(spec) - _VIEW_KEYS
        if unknown:
            raise ValueError(
                f"view {name!r}: unknown keys {sorted(unknown)} (allowed {sorted(_VIEW_KEYS)})"
            )
        if "size" not in spec:
            raise ValueError(f"view {name!r} needs a 'size' [H, W]")
        up = spec.get("upsample_to")
        aspect = str(spec.get("aspect", "crop" if spec.get("crop_to_aspect", True) else "stretch"))
        if aspect not in ("crop", "pad", "stretch"):
            raise ValueError(f"view {name!r}: aspect must be crop, pad or stretch, got {aspect!r}")
        quality = spec.get("jpeg_quality")
        if quality is not None and not 1 <= int(quality) <= 100:
            raise ValueError(f"view {name!r}: jpeg_quality must be in 1..100, got {quality}")
        blur = float(spec.get("blur_sigma", 0.0))
        raw_noise = spec.get("noise", 0.0)
        noise: float | tuple[float, float]
        if isinstance(raw_noise, (int, float)):
            noise = float(raw_noise)
            bad_noise = noise < 0
        elif isinstance(raw_noise, Sequence) and len(raw_noise) == 2:
            noise = (float(raw_noise[0]), float(raw_noise[1]))
            bad_noise = noise[0] < 0 or noise[1] < noise[0]
        else:
            bad_noise = True
        if blur < 0 or bad_noise:
            raise ValueError(
                f"view {name!r}: blur_sigma must be >= 0 and noise a std >= 0 or a range "
                f"[low, high], got {blur!r}, {raw_noise!r}"
            )
        for key in ("interpolation", "upsample_interpolation"):
            if key in spec and spec[key] not in _CV_INTERP:
                raise ValueError(
                    f"view {name!r}: {key} must be one of {sorted(_CV_INTERP)}, got {spec[key]!r}"
                )
        if quality is not None and (not isinstance(quality, int) or isinstance(quality, bool)):
            raise ValueError(f"view {name!r}: jpeg_quality must be an integer, got {quality!r}")
        out[name] = ViewSpec(
            size=_pair(spec["size"], f"views.{name}.size"),
            upsample_to=None if up is None else _pair(up, f"views.{name}.upsample_to"),
            interpolation=str(spec.get("interpolation", "area")),
            upsample_interpolation=str(spec.get("upsample_interpolation", "bilinear")),
            aspect=aspect,
            blur_sigma=blur,
            jpeg_quality=None if quality is None else int(quality),
            noise=noise,
        )
    return out


#: Derived streams a view can feed: ``flow`` (2 channels) and ``mask`` (1 channel).
STREAM_KINDS: dict[str, int] = {"flow": 2, "mask": 1}


@dataclass(frozen=True)
class StreamSpec:
    """A derived input computed from one view's frames (MSN's optical flow and slack mask).

    The stream is computed on the view's frames at its *output* size (after ``upsample_to``), as
    uint8 — what a deployed camera pipeline computes from the frames it has. It covers the whole
    video (flow between consecutive video frames, the slack mask's motion test over all frames)
    and is then sampled like the view, so a preprocessing cache can store it.

    Attributes:
        kind: ``"flow"`` (:func:`~lowres_har.transforms.optical_flow`, 2 channels in
            ``[-1, 1]``) or ``"mask"`` (:func:`~lowres_har.transforms.slack_mask`, 1 channel in
            ``[-1, 1]``).
        view: the source view's name.
        params: keyword arguments of the transform (e.g. ``method``, ``sigma``), as sorted pairs.
    """

    kind: str
    view: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def channels(self) -> int:
        """Channels of the stream (2 for flow, 1 for mask)."""
        return STREAM_KINDS[self.kind]

    def spec(self) -> dict[str, Any]:
        """JSON-able description (what a cache of this stream depends on)."""
        return {"kind": self.kind, "view": self.view, "params": dict(self.params)}

    def compute(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``(T, H, W, 3)`` frames of the source view at output size → uint8
        ``(T, H, W, channels)`` (quantised, see ``flow_to_uint8`` / ``mask_to_uint8``)."""
        from lowres_har.transforms.flow import flow_to_uint8, optical_flow
        from lowres_har.transforms.mask import mask_to_uint8, slack_mask

        if self.kind == "flow":
            return flow_to_uint8(optical_flow(frames, **dict(self.params)))
        return mask_to_uint8(slack_mask(frames, **dict(self.params)))[..., None]


def parse_streams(
    streams: Mapping[str, Mapping[str, Any]] | None, views: Mapping[str, ViewSpec]
) -> dict[str, StreamSpec]:
    """Validate ``{name: {kind, view, ...transform options}}`` from a config.

    ``kind`` defaults to the name's prefix (``flow``, ``flow_lr`` → flow; ``mask*`` → mask) and
    ``view`` to ``"video"``. Example::

        streams:
          flow: {view: video, method: tvl1}
          mask: {view: video, tau: 0.1}
    """
    out: dict[str, StreamSpec] = {}
    for name, spec in (streams or {}).items():
        spec = dict(spec)
        kind = str(spec.pop("kind", next((k for k in STREAM_KINDS if name.startswith(k)), "")))
        if kind not in STREAM_KINDS:
            raise ValueError(
                f"stream {name!r}: kind must be one of {sorted(STREAM_KINDS)} (or a name that "
                f"starts with one), got {kind!r}"
            )
        view = str(spec.pop("view", "video"))
        if view not in views:
            raise ValueError(f"stream {name!r}: unknown view {view!r} (views: {sorted(views)})")
        if name in views:
            raise ValueError(f"stream {name!r} has the name of a view")
        out[name] = StreamSpec(kind, view, tuple(sorted(spec.items())))
        try:  # check the options now rather than in a worker
            out[name].compute(np.zeros((2, 16, 16, 3), np.uint8))
        except (TypeError, ValueError) as err:
            raise ValueError(f"stream {name!r}: {err}") from err
    return out


class ViewDegrader:
    """The deterministic part of a set of views and streams: uint8 ``(T, H, W, 3)`` →
    ``{name: uint8 (T, h, w, c)}`` (views at their recorded ``size``, c = 3; streams at their
    view's output size, c = 2 or 1). Picklable (preprocessing workers run it)."""

    def __init__(
        self, views: Mapping[str, ViewSpec], streams: Mapping[str, StreamSpec] | None = None
    ) -> None:
        self.views = dict(views)
        self.streams = dict(streams or {})
        self.degrade = {n: _make_degrade(v) for n, v in self.views.items()}

    def __call__(self, clip: np.ndarray) -> dict[str, np.ndarray]:
        out = {name: fn(clip) for name, fn in self.degrade.items()}
        upsampled: dict[str, np.ndarray] = {}
        for name, stream in self.streams.items():
            if stream.view not in upsampled:
                upsampled[stream.view] = self.output_frames(stream.view, out[stream.view])
            out[name] = stream.compute(upsampled[stream.view])
        return out

    def output_frames(self, view: str, frames: np.ndarray) -> np.ndarray:
        """A view's recorded uint8 frames resized to its output size (uint8)."""
        spec = self.views[view]
        if spec.upsample_to is None:
            return frames
        return resize_clip(frames, spec.upsample_to, spec.upsample_interpolation)

    @property
    def shapes(self) -> dict[str, tuple[int, int, int]]:
        """``{name: (h, w, c)}`` of the outputs."""
        out = {n: (*v.size, 3) for n, v in self.views.items()}
        for n, st in self.streams.items():
            out[n] = (*self.views[st.view].output_size, st.channels)
        return out  # type: ignore[return-value]

    def specs(self) -> dict[str, dict[str, Any]]:
        """JSON-able description (see :meth:`ViewSpec.degrade_spec`, :meth:`StreamSpec.spec`)."""
        out = {n: v.degrade_spec() for n, v in self.views.items()}
        out.update({n: st.spec() for n, st in self.streams.items()})
        return out


def _make_degrade(view: ViewSpec) -> Callable[[np.ndarray], np.ndarray]:
    return Degrade(
        view.size,
        view.interpolation,
        aspect=view.aspect,
        blur_sigma=view.blur_sigma,
        jpeg_quality=view.jpeg_quality,
    )


class ClipTransform:
    """uint8 clip ``(T, H, W, 3)`` → ``{view name: float tensor (3, T, h, w)}``.

    From source frames (:meth:`__call__`), training: random short-side scale, random crop
    (``crop_size`` fixed-size, else a random-resized crop of ``crop_scale`` area), flip and
    RandAugment, all drawn once per clip; evaluation: short side scaled to ``short_side_scale[0]``
    and a centre ``crop_size`` crop when those are set. Then each view's degradation, noise,
    upsampling and normalisation.

    From already degraded frames, e.g. a preprocessing cache (:meth:`from_views`): the same
    random crop (drawn once in relative coordinates, applied to every view and resized back to
    the view's size), flip and RandAugment (one draw for all views), then noise, upsampling and
    normalisation. Short-side scaling has no meaning there and is skipped.

    Args:
        views: parsed view specs.
        train: apply the random augmentation.
        hflip: probability of a horizontal flip (train only).
        crop_scale: area fraction range of a random crop (train only; ``None`` disables it).
        crop_ratio: range of that crop's aspect ratio relative to the frame's (crop W/H divided
            by frame W/H); ``(1, 1)`` keeps the frame's shape, e.g. MSN's 28×28 crop of a 32×32
            frame is ``crop_scale: [0.766, 0.766]``, ``crop_ratio: [1, 1]``.
        mean: per-channel normalisation mean (in [0, 1] units).
        std: per-channel normalisation std.
        short_side_scale: ``(min, max)`` short side in pixels of the source frames before
            cropping (train: random in the range; eval: ``min``); ``None`` keeps the size.
        crop_size: ``(H, W)`` fixed-size crop of the source frames (random in train, centre in
            eval); replaces the ``crop_scale`` crop when set.
        randaugment: ``{num_ops, magnitude, ...}`` arguments of
            :class:`~lowres_har.transforms.RandAugment` (train only); ``None`` disables it.
    """

    #: ``__call__``/``from_views`` accept ``seed=`` (datasets pass it for evaluation items).
    takes_seed = True

    def __init__(
        self,
        views: Mapping[str, ViewSpec],
        *,
        train: bool,
        hflip: float = 0.5,
        crop_scale: tuple[float, float] | None = (0.6, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        short_side_scale: Sequence[int] | None = None,
        crop_size: Sequence[int] | None = None,
        randaugment: Mapping[str, Any] | None = None,
        streams: Mapping[str, StreamSpec] | None = None,
    ) -> None:
        self.views = dict(views)
        self.streams = dict(streams or {})
        self.train = train
        self.flip = RandomHorizontalFlip(hflip) if train and hflip > 0 else None
        self.scale: Callable[[np.ndarray], np.ndarray] | None = None
        if short_side_scale is not None:
            lo, hi = (int(v) for v in short_side_scale)
            self.scale = RandomShortSideScale(lo, hi if train else lo)
        self.fixed_crop: Callable[[np.ndarray], np.ndarray] | None = None
        if crop_size is not None:
            size = _pair(list(crop_size), "crop_size")
            self.fixed_crop = RandomCrop(size) if train else CenterCrop(size)
        self.crop = (
            RandomResizedCrop(None, scale=crop_scale, ratio=crop_ratio)
            if train and crop_scale and crop_size is None
            else None
        )
        self.randaugment = RandAugment(**randaugment) if train and randaugment else None
        self.noise = {n: GaussianNoise(v.noise) for n, v in self.views.items() if v.has_noise}
        self.degrader = ViewDegrader(self.views, self.streams)
        for name, v in self.views.items():
            if v.upsample_interpolation not in _CV_INTERP:
                raise ValueError(
                    f"view {name!r}: upsample_interpolation must be one of {sorted(_CV_INTERP)}, "
                    f"got {v.upsample_interpolation!r}"
                )
        # ToTensor + Normalize fused on (T, C, H, W): x * scale - shift, scale = 1 / (255 std)
        std_a = np.asarray(std, dtype=np.float32)
        self._scale = 1.0 / (255.0 * std_a)
        self._shift = np.asarray(mean, dtype=np.float32) / std_a

    def _crop_params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(y0, x0, h, w)`` of the random crop; its aspect range is relative to the frame's."""
        assert self.crop is not None
        base = self.crop.ratio
        aspect = width / height
        self.crop.ratio = (base[0] * aspect, base[1] * aspect)
        try:
            return self.crop.params(height, width)
        finally:
            self.crop.ratio = base

    @property
    def needs_video(self) -> bool:
        """Streams need the whole video (flow to the next video frame, the mask's motion test):
        datasets then call :meth:`from_video` instead of sampling frames first."""
        return bool(self.streams)

    def __call__(self, clip: np.ndarray, *, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Source frames uint8 ``(T, H, W, 3)`` → ``{view: float (3, T, h, w)}`` (and streams
        ``(C, T, h, w)``), every frame of ``clip`` kept.

        ``seed`` makes the sensor noise reproducible (evaluation datasets pass the item index).
        """
        return self.from_video(clip, None, seed=seed)

    def from_video(
        self, video: np.ndarray, indices: np.ndarray | None, *, seed: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Augment and degrade a whole video ``uint8 (N, H, W, 3)``, compute the streams over all
        of it, then keep the frames ``indices`` (``(T,)``, ``-1`` for a black padding frame;
        ``None`` keeps every frame). The augmentation is drawn once for the whole video."""
        if self.scale is not None:
            video = self.scale(video)
        if self.fixed_crop is not None:
            video = self.fixed_crop(video)
        if self.crop is not None:
            y0, x0, h, w = self._crop_params(video.shape[1], video.shape[2])
            video = video[:, y0 : y0 + h, x0 : x0 + w]
        if self.flip is not None:
            video = self.flip(video)
        if self.randaugment is not None:
            video = self.randaugment(video)
        out = self.degrader(video)
        if indices is not None:
            out = {n: gather_frames(v, indices) for n, v in out.items()}
        return self.finish(out, seed=seed)

    def from_views(
        self, views: Mapping[str, np.ndarray], *, seed: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Degraded frames ``{view: uint8 (T, h, w, 3)}`` → ``{view: float (3, T, h', w')}``."""
        views = {n: views[n] for n in (*self.views, *self.streams)}
        boxes: dict[str, tuple[int, int, int, int]] | None = None
        if self.crop is not None:
            first = next(iter(views.values()))
            fh, fw = first.shape[1:3]
            y0, x0, h, w = self._crop_params(fh, fw)
            boxes = {}
            for name, clip in views.items():
                ch, cw = clip.shape[1:3]
                top, left = round(y0 / fh * ch), round(x0 / fw * cw)
                hh, ww = max(1, round(h / fh * ch)), max(1, round(w / fw * cw))
                boxes[name] = (top, left, min(hh, ch - top), min(ww, cw - left))
        flip = self.flip is not None and float(torch.rand(())) < self.flip.p
        if self.randaugment is None:
            return self.finish(views, boxes=boxes, flip=flip, seed=seed)
        if self.streams:
            raise ValueError(
                "RandAugment cannot act on cached flow/mask streams (its geometric ops would "
                "misalign them): train from the videos (no cache_dir) or drop randaugment"
            )
        # RandAugment works on uint8 frames at the view's size: crop and flip first
        if boxes is not None:
            views = {
                n: resize_clip(
                    np.ascontiguousarray(v[:, t : t + hh, lf : lf + ww]), v.shape[1:3], "area"
                )
                for (n, v), (t, lf, hh, ww) in zip(views.items(), boxes.values(), strict=True)
            }
        if flip:
            views = {n: np.ascontiguousarray(v[:, :, ::-1]) for n, v in views.items()}
        ra = self.randaugment
        for op, sign in ra.draw():
            views = {
                n: randaugment_op(
                    v,
                    op,
                    ra.level,
                    sign,
                    interpolation=ra.interpolation,
                    fill=ra.fill,
                    max_translate=ra.max_translate,
                )
                for n, v in views.items()
            }
        return self.finish(views, seed=seed)

    def _finish_stream(
        self, name: str, q: np.ndarray, box: tuple[int, int, int, int] | None, flip: bool
    ) -> torch.Tensor:
        """uint8 stream ``(T, h, w, C)`` → float ``(C, T, H, W)`` in stream units (flow in
        ``bound`` units, scaled by any crop enlargement and negated in x by a flip)."""
        stream = self.streams[name]
        size = self.views[stream.view].output_size
        return _finish_stream_impl(stream, q, size, box, flip)

    def finish(
        self,
        views: Mapping[str, np.ndarray],
        *,
        boxes: Mapping[str, tuple[int, int, int, int]] | None = None,
        flip: bool = False,
        seed: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Noise, optional crop box ``(top, left, h, w)`` and flip, normalisation and the resize
        to the view's output size (OpenCV, one call per clip) → ``{view: float (3, T, H, W)}``."""
        out = {}
        for name, view in views.items():
            if name in self.streams:
                box = None if boxes is None else boxes[name]
                out[name] = self._finish_stream(name, view, box, flip)
                continue
            spec = self.views[name]
            if view.ndim != 4 or view.shape[-1] != len(self._scale):
                raise ValueError(
                    f"view {name!r}: expected uint8 (T, H, W, {len(self._scale)}), got {view.shape}"
                )
            if name in self.noise:
                if seed is None:
                    view = self.noise[name](view)
                else:
                    gen = torch.Generator().manual_seed(seed)
                    view = GaussianNoise(spec.noise, generator=gen)(view)
            if boxes is not None:
                top, left, hh, ww = boxes[name]
                view = view[:, top : top + hh, left : left + ww]
            if flip:
                view = view[:, :, ::-1]
            # normalise the small frames first: resizing is linear, so this equals normalising
            # after the resize, at a fraction of the cost
            f = view.astype(np.float32) * self._scale - self._shift  # (T, h, w, C)
            size = spec.output_size
            if f.shape[1:3] != size:
                mode = spec.upsample_interpolation if spec.upsample_to else "bilinear"
                f = _resize_frames(f, size, mode)
            out[name] = torch.from_numpy(np.ascontiguousarray(f.transpose(3, 0, 1, 2)))
        return out


def _finish_stream_impl(
    stream: StreamSpec,
    q: np.ndarray,
    size: tuple[int, int],
    box: tuple[int, int, int, int] | None,
    flip: bool,
) -> torch.Tensor:
    from lowres_har.transforms.flow import flow_from_uint8
    from lowres_har.transforms.mask import mask_from_uint8

    if q.ndim != 4 or q.shape[-1] != stream.channels:
        raise ValueError(
            f"{stream.kind} stream: expected uint8 (T, H, W, {stream.channels}), got {q.shape}"
        )
    f = flow_from_uint8(q) if stream.kind == "flow" else mask_from_uint8(q[..., 0])[..., None]
    if box is not None:
        top, left, hh, ww = box
        f = f[:, top : top + hh, left : left + ww]
    if flip:
        f = f[:, :, ::-1]
    f = np.array(f, dtype=np.float32)  # own, contiguous copy
    if stream.kind == "flow":
        # displacements are in pixels of the frame: they grow with the crop's enlargement
        f[..., 0] *= size[1] / f.shape[2]
        f[..., 1] *= size[0] / f.shape[1]
        if flip:
            f[..., 0] *= -1
    if f.shape[1:3] != size:
        f = _resize_frames(f, size, "bilinear")
    return torch.from_numpy(np.ascontiguousarray(f.transpose(3, 0, 1, 2)))


def _resize_frames(frames: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize float frames ``(T, h, w, C)`` to ``(T, *size, C)`` with few OpenCV calls: frames are
    stacked along the channel axis (OpenCV 5 takes at most 128 channels per call)."""
    if mode not in _CV_INTERP:
        raise ValueError(f"interpolation must be one of {sorted(_CV_INTERP)}, got {mode!r}")
    t, h, w, c = frames.shape
    stacked = frames.transpose(1, 2, 0, 3).reshape(h, w, t * c)
    group = max(1, 128 // c) * c
    parts = [
        cv2.resize(
            np.ascontiguousarray(stacked[:, :, i : i + group]),
            (size[1], size[0]),
            interpolation=_CV_INTERP[mode],
        ).reshape(size[0], size[1], -1)
        for i in range(0, t * c, group)
    ]
    out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
    return out.reshape(size[0], size[1], t, c).transpose(2, 0, 1, 3)
