"""Architectures. Importing this package registers every model with :mod:`lowres_har.registry`."""

from lowres_har.models.c3d import C3DTiny, c3d_tiny
from lowres_har.models.msn import MSN
from lowres_har.models.pyramid import (
    FPNResNet3D,
    MultiScaleBackbone,
    MultiScaleResNet3D,
    fpn_resnet3d_18,
    fpn_resnet3d_50,
    ms_resnet3d_18,
    ms_resnet3d_50,
    msfpn_resnet3d_18,
)
from lowres_har.models.resnet3d import (
    ResNet3D,
    ResNet3DBackbone,
    ad_resnet3d_18,
    ad_resnet3d_34,
    ad_resnet3d_50,
    load_3d_resnets_checkpoint,
)
from lowres_har.models.video_resnet import VideoResNetClassifier, mc3_18, r2plus1d_18, r3d_18

__all__ = [
    "MSN",
    "C3DTiny",
    "FPNResNet3D",
    "MultiScaleBackbone",
    "MultiScaleResNet3D",
    "ResNet3D",
    "ResNet3DBackbone",
    "VideoResNetClassifier",
    "ad_resnet3d_18",
    "ad_resnet3d_34",
    "ad_resnet3d_50",
    "c3d_tiny",
    "fpn_resnet3d_18",
    "fpn_resnet3d_50",
    "load_3d_resnets_checkpoint",
    "mc3_18",
    "ms_resnet3d_18",
    "ms_resnet3d_50",
    "msfpn_resnet3d_18",
    "r2plus1d_18",
    "r3d_18",
]
