"""Pure transforms over clips: numpy ``uint8 (T, H, W, C)`` until :class:`ToTensor`, then
float ``(C, T, H, W)``.

- resolution: :class:`Degrade` (aspect crop/pad/stretch, lens blur, area downsampling, JPEG),
  :class:`Resize`, :func:`center_crop_to_aspect`, :func:`pad_to_aspect`, :func:`resize_clip`;
- degradation: :func:`gaussian_blur`, :func:`jpeg_compress`, :class:`JpegCompression`,
  :class:`GaussianNoise` (stochastic, kept out of ``Degrade`` so degraded frames can be cached);
- augmentation (one draw per clip): :class:`RandomResizedCrop`, :class:`RandomShortSideScale`,
  :class:`RandomCrop`, :class:`CenterCrop`, :class:`RandomHorizontalFlip`, :class:`RandAugment`;
- tensors: :class:`ToTensor`, :class:`Normalize`, :class:`Compose`.
- MSN streams: :func:`optical_flow` (TV-L1 / Farneback / DIS, ``flow_to_uint8`` /
  ``flow_from_uint8``) and :func:`slack_mask` (``slack_motion_energy``, ``mask_to_uint8`` /
  ``mask_from_uint8``).
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
from lowres_har.transforms.flow import (
    FLOW_BOUND,
    FLOW_METHODS,
    flow_from_uint8,
    flow_to_uint8,
    optical_flow,
)
from lowres_har.transforms.mask import (
    mask_from_uint8,
    mask_to_uint8,
    slack_mask,
    slack_motion_energy,
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
    "FLOW_BOUND",
    "FLOW_METHODS",
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
    "flow_from_uint8",
    "flow_to_uint8",
    "gaussian_blur",
    "jpeg_compress",
    "mask_from_uint8",
    "mask_to_uint8",
    "optical_flow",
    "pad_to_aspect",
    "randaugment_op",
    "resize_clip",
    "slack_mask",
    "slack_motion_energy",
]
