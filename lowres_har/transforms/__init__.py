"""Pure transforms over clips: numpy ``uint8 (T, H, W, C)`` until :class:`ToTensor`, then
float ``(C, T, H, W)``.

- resolution: :class:`Degrade` (aspect crop/pad/stretch, lens blur, area downsampling, JPEG),
  :class:`Resize`, :func:`center_crop_to_aspect`, :func:`pad_to_aspect`, :func:`resize_clip`;
- degradation: :func:`gaussian_blur`, :func:`jpeg_compress`, :class:`JpegCompression`,
  :class:`GaussianNoise` (stochastic, kept out of ``Degrade`` so degraded frames can be cached);
- augmentation (one draw per clip): :class:`RandomResizedCrop`, :class:`RandomShortSideScale`,
  :class:`RandomCrop`, :class:`CenterCrop`, :class:`RandomHorizontalFlip`, :class:`RandAugment`;
- tensors: :class:`ToTensor`, :class:`Normalize`, :class:`Compose`.
"""

from lowres_har.transforms.augment import (
    KINETICS_MEAN,
    KINETICS_STD,
    CenterCrop,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomShortSideScale,
    ToTensor,
)
from lowres_har.transforms.degradation import (
    GaussianNoise,
    JpegCompression,
    gaussian_blur,
    jpeg_compress,
)
from lowres_har.transforms.randaugment import RANDAUGMENT_OPS, RandAugment, randaugment_op
from lowres_har.transforms.resolution import (
    ASPECT_MODES,
    Degrade,
    Resize,
    center_crop_to_aspect,
    pad_to_aspect,
    resize_clip,
)

__all__ = [
    "ASPECT_MODES",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "RANDAUGMENT_OPS",
    "CenterCrop",
    "Compose",
    "Degrade",
    "GaussianNoise",
    "JpegCompression",
    "Normalize",
    "RandAugment",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomShortSideScale",
    "Resize",
    "ToTensor",
    "center_crop_to_aspect",
    "gaussian_blur",
    "jpeg_compress",
    "pad_to_aspect",
    "randaugment_op",
    "resize_clip",
]
