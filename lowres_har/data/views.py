"""Turn one decoded clip into the named tensors a batch holds (``video``, ``video_hr``, ...).

A *view* is a resolution the clip is shown at. ``{"video": {"size": [12, 16], "upsample_to":
[32, 32]}}`` degrades the frames to 12×16 (centre crop to 4:3, area averaging) and resizes them
back to the 32×32 network input. Spatial augmentation (crop, flip) is drawn once and applied to
the source frames before degradation, so every view shows the same content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lowres_har.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    Degrade,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

__all__ = ["DEFAULT_VIEWS", "ClipTransform", "ViewSpec", "parse_views"]

#: eLR 12×16 upsampled to the 32×32 network input.
DEFAULT_VIEWS: dict[str, dict[str, Any]] = {"video": {"size": [12, 16], "upsample_to": [32, 32]}}


@dataclass(frozen=True)
class ViewSpec:
    """One view: degrade to ``size`` ``(H, W)``, then optionally resize to ``upsample_to``."""

    size: tuple[int, int]
    upsample_to: tuple[int, int] | None = None
    interpolation: str = "area"
    upsample_interpolation: str = "bilinear"
    crop_to_aspect: bool = True

    @property
    def output_size(self) -> tuple[int, int]:
        """``(H, W)`` of the tensor the model receives."""
        return self.upsample_to or self.size


def _pair(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{what} must be an int or [H, W], got {value!r}")


def parse_views(views: Mapping[str, Mapping[str, Any]] | None) -> dict[str, ViewSpec]:
    """Validate a ``{name: {size, upsample_to, interpolation, ...}}`` mapping from a config."""
    views = DEFAULT_VIEWS if views is None else views
    if not views:
        raise ValueError("views must name at least one view (e.g. 'video')")
    allowed = {"size", "upsample_to", "interpolation", "upsample_interpolation", "crop_to_aspect"}
    out = {}
    for name, spec in views.items():
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(
                f"view {name!r}: unknown keys {sorted(unknown)} (allowed {sorted(allowed)})"
            )
        if "size" not in spec:
            raise ValueError(f"view {name!r} needs a 'size' [H, W]")
        up = spec.get("upsample_to")
        out[name] = ViewSpec(
            size=_pair(spec["size"], f"views.{name}.size"),
            upsample_to=None if up is None else _pair(up, f"views.{name}.upsample_to"),
            interpolation=str(spec.get("interpolation", "area")),
            upsample_interpolation=str(spec.get("upsample_interpolation", "bilinear")),
            crop_to_aspect=bool(spec.get("crop_to_aspect", True)),
        )
    return out


class ClipTransform:
    """uint8 clip ``(T, H, W, 3)`` → ``{view name: float tensor (3, T, h, w)}``.

    Args:
        views: parsed view specs.
        train: apply the random augmentation.
        hflip: probability of a horizontal flip (train only).
        crop_scale: area fraction range of a random crop before degradation (train only; ``None``
            disables cropping).
        mean: per-channel normalisation mean (in [0, 1] units).
        std: per-channel normalisation std.
    """

    def __init__(
        self,
        views: Mapping[str, ViewSpec],
        *,
        train: bool,
        hflip: float = 0.5,
        crop_scale: tuple[float, float] | None = (0.6, 1.0),
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
    ) -> None:
        self.views = dict(views)
        self.train = train
        self.flip = RandomHorizontalFlip(hflip) if train and hflip > 0 else None
        self.crop = RandomResizedCrop(None, scale=crop_scale) if train and crop_scale else None
        self.degrade = {
            n: Degrade(v.size, v.interpolation, v.crop_to_aspect) for n, v in self.views.items()
        }
        self.resize = {
            n: Resize(v.upsample_to, v.upsample_interpolation)
            for n, v in self.views.items()
            if v.upsample_to is not None
        }
        self.to_tensor = ToTensor()
        self.normalize = Normalize(mean, std)

    def __call__(self, clip: np.ndarray) -> dict[str, torch.Tensor]:
        if self.crop is not None:
            clip = self.crop(clip)
        if self.flip is not None:
            clip = self.flip(clip)
        out = {}
        for name in self.views:
            view = self.degrade[name](clip)
            if name in self.resize:
                view = self.resize[name](view)
            out[name] = self.normalize(self.to_tensor(view))
        return out
