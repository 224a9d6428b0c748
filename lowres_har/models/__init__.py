"""Architectures. Importing this package registers every model with :mod:`lowres_har.registry`."""

from lowres_har.models.c3d import C3DTiny, c3d_tiny
from lowres_har.models.msn import MSN
from lowres_har.models.video_resnet import VideoResNetClassifier, mc3_18, r2plus1d_18, r3d_18

__all__ = ["MSN", "C3DTiny", "VideoResNetClassifier", "c3d_tiny", "mc3_18", "r2plus1d_18", "r3d_18"]
