"""Pure transforms over clips: numpy ``uint8 (T, H, W, C)`` until :class:`ToTensor`, then
float ``(C, T, H, W)``."""

from lowres_har.transforms.augment import (
    KINETICS_MEAN,
    KINETICS_STD,
    Compose,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ToTensor,
)
from lowres_har.transforms.resolution import Degrade, Resize, center_crop_to_aspect, resize_clip

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "Compose",
    "Degrade",
    "Normalize",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
    "center_crop_to_aspect",
    "resize_clip",
]
