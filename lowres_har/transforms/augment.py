"""Clip-consistent augmentation and tensor conversion.

Random transforms draw their parameters once per clip (every frame gets the same crop/flip) from
torch's global generator, which Lightning's ``seed_everything`` and the DataLoader's per-worker
seeding control, or from a ``torch.Generator`` passed as ``generator=``. A generator object is
copied into every DataLoader worker, so workers would repeat each other's draws: pass one only for
single-process use (tests, offline preprocessing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lowres_har.transforms.resolution import _check_clip, _size, resize_clip

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "CenterCrop",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomShortSideScale",
    "ToTensor",
]

#: Mean and std of Kinetics-400 RGB (in [0, 1]); the torchvision video models' normalisation.
KINETICS_MEAN: tuple[float, float, float] = (0.43216, 0.394666, 0.37645)
KINETICS_STD: tuple[float, float, float] = (0.22803, 0.22145, 0.216989)


def _uniform(low: float, high: float, generator: torch.Generator | None = None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(low: int, high: int, generator: torch.Generator | None = None) -> int:
    """Uniform integer in ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


class Compose:
    """Apply transforms in order (each takes the previous one's output)."""

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
    """Mirror every frame of a clip ``(T, H, W, C)`` left-right with probability ``p``.

    Args:
        p: flip probability.
        generator: torch generator to draw from (default: the global RNG).
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None) -> None:
        self.p = p
        self.generator = generator

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` → ``(T, H, W, C)``, all frames flipped or none."""
        if float(torch.rand((), generator=self.generator)) < self.p:
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
        generator: torch generator to draw from (default: the global RNG).
    """

    def __init__(
        self,
        size: Sequence[int] | int | None = None,
        scale: tuple[float, float] = (0.6, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        interpolation: str = "bilinear",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.size = None if size is None else _size(size)
        self.scale = scale
        self.ratio = ratio
        self.interpolation = interpolation
        self.generator = generator

    def params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Draw ``(y0, x0, h, w)`` for a frame of ``height × width``."""
        area = height * width
        log_r = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        g = self.generator
        for _ in range(10):
            target = area * _uniform(*self.scale, generator=g)
            aspect = math.exp(_uniform(*log_r, generator=g))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                y0 = _randint(0, height - h, g)
                x0 = _randint(0, width - w, g)
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


class RandomShortSideScale:
    """Resize every frame so the short side is a random integer in ``[min_size, max_size]``.

    The size is drawn once per clip and the aspect ratio kept (long side rounded), as in the
    SlowFast / PyTorchVideo training recipes.

    Args:
        min_size: smallest short side in pixels.
        max_size: largest short side in pixels (inclusive).
        interpolation: ``"bilinear"`` (default), ``"bicubic"``, ``"nearest"`` or ``"area"``.
        generator: torch generator to draw from (default: the global RNG).
    """

    def __init__(
        self,
        min_size: int,
        max_size: int,
        interpolation: str = "bilinear",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 1 <= min_size <= max_size:
            raise ValueError(
                f"RandomShortSideScale needs 1 <= min_size <= max_size, got {min_size}, {max_size}"
            )
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        self.interpolation = interpolation
        self.generator = generator

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` → ``(T, h, w, C)`` with ``min(h, w)`` in ``[min_size, max_size]``."""
        _check_clip(clip)
        short = _randint(self.min_size, self.max_size, self.generator)
        h, w = clip.shape[1:3]
        if h <= w:
            size = (short, max(1, round(w * short / h)))
        else:
            size = (max(1, round(h * short / w)), short)
        return resize_clip(clip, size, self.interpolation)

    def __repr__(self) -> str:
        return (
            f"RandomShortSideScale(min_size={self.min_size}, max_size={self.max_size}, "
            f"interpolation={self.interpolation!r})"
        )


def _crop_fits(clip: np.ndarray, size: tuple[int, int], what: str) -> None:
    _check_clip(clip)
    if size[0] > clip.shape[1] or size[1] > clip.shape[2]:
        raise ValueError(
            f"{what}: crop size {size} (H, W) is larger than the frames "
            f"{tuple(clip.shape[1:3])}; resize first (e.g. RandomShortSideScale)"
        )


class RandomCrop:
    """Crop a fixed-size window at a random position, the same window for every frame.

    Args:
        size: crop ``(H, W)``; must fit inside the frames.
        generator: torch generator to draw from (default: the global RNG).
    """

    def __init__(
        self, size: Sequence[int] | int, *, generator: torch.Generator | None = None
    ) -> None:
        self.size = _size(size)
        self.generator = generator

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` → ``(T, *size, C)`` (a view into ``clip``)."""
        _crop_fits(clip, self.size, "RandomCrop")
        h, w = self.size
        y0 = _randint(0, clip.shape[1] - h, self.generator)
        x0 = _randint(0, clip.shape[2] - w, self.generator)
        return clip[:, y0 : y0 + h, x0 : x0 + w]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size})"


class CenterCrop:
    """Crop the centred ``size`` window of every frame (the evaluation twin of ``RandomCrop``).

    Args:
        size: crop ``(H, W)``; must fit inside the frames.
    """

    def __init__(self, size: Sequence[int] | int) -> None:
        self.size = _size(size)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        """``(T, H, W, C)`` → ``(T, *size, C)`` (a view into ``clip``)."""
        _crop_fits(clip, self.size, "CenterCrop")
        h, w = self.size
        y0 = (clip.shape[1] - h) // 2
        x0 = (clip.shape[2] - w) // 2
        return clip[:, y0 : y0 + h, x0 : x0 + w]

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


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
