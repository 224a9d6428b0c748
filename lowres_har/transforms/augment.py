"""Clip-consistent augmentation and tensor conversion.

Random transforms draw their parameters once per clip (every frame gets the same crop/flip) from
torch's global generator, which Lightning's ``seed_everything`` and the DataLoader's per-worker
seeding control.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lowres_har.transforms.resolution import _size, resize_clip

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "Compose",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "ToTensor",
]

#: Mean and std of Kinetics-400 RGB (in [0, 1]); the torchvision video models' normalisation.
KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, clip: Any) -> Any:
        for t in self.transforms:
            clip = t(clip)
        return clip

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class RandomHorizontalFlip:
    """Mirror every frame of a clip ``(T, H, W, C)`` left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        if float(torch.rand(())) < self.p:
            return np.ascontiguousarray(clip[:, :, ::-1])
        return clip

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomResizedCrop:
    """Crop one random region (same for every frame) and optionally resize it.

    The region covers a fraction in ``scale`` of the frame area with aspect ratio (W/H) drawn
    log-uniformly from ``ratio``.

    Args:
        size: output ``(H, W)``; ``None`` returns the crop unresized (useful before
            :class:`~lowres_har.transforms.Degrade`, which resizes anyway).
        scale: range of the crop's area fraction.
        ratio: range of the crop's aspect ratio W/H.
        interpolation: resize mode when ``size`` is given.
    """

    def __init__(
        self,
        size: Sequence[int] | int | None = None,
        scale: tuple[float, float] = (0.6, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        interpolation: str = "bilinear",
    ) -> None:
        self.size = None if size is None else _size(size)
        self.scale = scale
        self.ratio = ratio
        self.interpolation = interpolation

    def params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Draw ``(y0, x0, h, w)`` for a frame of ``height × width``."""
        area = height * width
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * _uniform(*self.scale)
            aspect = math.exp(_uniform(*log_r))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                y0 = int(torch.randint(0, height - h + 1, ()))
                x0 = int(torch.randint(0, width - w + 1, ()))
                return y0, x0, h, w
        # fall back to the largest centred crop within the ratio range
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            h, w = height, round(height * self.ratio[1])
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` → ``(T, h, w, C)`` (``size`` when given)."""
        y0, x0, h, w = self.params(clip.shape[1], clip.shape[2])
        out = clip[:, y0 : y0 + h, x0 : x0 + w]
        if self.size is not None:
            out = resize_clip(np.ascontiguousarray(out), self.size, self.interpolation)
        return out

    def __repr__(self) -> str:
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class ToTensor:
    """``uint8`` numpy clip ``(T, H, W, C)`` → float32 tensor ``(C, T, H, W)`` in ``[0, 1]``."""

    def __call__(self, clip: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(clip))
        return t.permute(3, 0, 1, 2).float().div_(255.0)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """Per-channel ``(x - mean) / std`` on a float tensor ``(C, T, H, W)``."""

    def __init__(
        self,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
    ) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.shape[0] != self.mean.shape[0]:
            raise ValueError(
                f"Normalize has {self.mean.shape[0]} channels but the clip has {clip.shape[0]} "
                f"(expected (C, T, H, W), got {tuple(clip.shape)})"
            )
        return (clip - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"
