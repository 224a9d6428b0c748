"""torchvision's video ResNets (R3D-18, MC3-18, R(2+1)D-18) as registered baselines.

The modules keep torchvision's parameter names, so state dicts in torchvision's format — the form
Kinetics-400 pretrained checkpoints come in — load directly through ``create_model(...,
pretrained=PATH)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn
from torchvision.models.video.resnet import (
    BasicBlock,
    Conv2Plus1D,
    Conv3DNoTemporal,
    Conv3DSimple,
    VideoResNet,
)

from lowres_har.registry import InputSpec, ModelCard, Paper, ReportedResult, register_model

__all__ = ["VideoResNetClassifier", "mc3_18", "r2plus1d_18", "r3d_18"]


class VideoResNetClassifier(VideoResNet):
    """torchvision ``VideoResNet`` with the lowres-har model interface.

    Input ``video``: ``(B, 3, T, H, W)`` float, normalised with the Kinetics mean/std. Any ``T``
    and ``H×W`` the strides allow: the stem halves ``H, W``; stages 2–4 halve ``H, W`` and, where
    their convolutions are 3D (R3D, R(2+1)D), ``T``; a global average pool follows. Output:
    logits ``(B, num_classes)``.

    Args:
        conv_makers: one convolution builder per stage (torchvision's ``Conv3DSimple`` etc.).
        stem: the stem module class.
        layers: number of residual blocks per stage.
        num_classes: classifier outputs.
        dropout: dropout probability before the classifier (0 keeps torchvision's network).
        width: channels of the first stage (stages have ``width × (1, 2, 4, 8)``). 64 is
            torchvision's network and loads its state dicts; smaller widths (16–32) make light
            networks for 12×16 – 32×32 inputs (about ``(width / 64)²`` of the FLOPs).
    """

    input_keys: tuple[str, ...] = ("video",)
    fc: nn.Linear

    def __init__(
        self,
        conv_makers: Sequence[Callable[..., nn.Module]],
        stem: Callable[[int], nn.Module],
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 400,
        dropout: float = 0.0,
        width: int = 64,
    ) -> None:
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        nn.Module.__init__(self)  # VideoResNet.__init__ hard-codes width 64; same layout below
        self.inplanes = width
        self.stem = stem(width)
        for i, (maker, blocks) in enumerate(zip(conv_makers, layers, strict=True)):
            layer = self._make_layer(
                BasicBlock,
                maker,  # type: ignore[arg-type]
                width * 2**i,
                blocks,
                stride=1 if i == 0 else 2,
            )
            setattr(self, f"layer{i + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(width * 8, num_classes)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @property
    def num_classes(self) -> int:
        return int(self.fc.out_features)

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """Feature maps after each of the four stages, ``[(B, C_i, T_i, H_i, W_i)] * 4``."""
        x = self.stem(video)
        feats = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            feats.append(x)
        return feats

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Logits ``(B, num_classes)`` from the last stage's features."""
        x = self.avgpool(features[-1]).flatten(1)
        return self.fc(self.drop(x))

    def forward(self, video: Tensor) -> Tensor:  # noqa: D102
        return self.forward_head(self.forward_features(video))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one of ``num_classes`` outputs."""
        in_features = int(self.fc.in_features)
        self.fc = nn.Linear(in_features, num_classes)


def basic_stem(width: int = 64) -> nn.Sequential:
    """R3D/MC3 stem: Conv3d (3×7×7, stride 1×2×2) → BN → ReLU; torchvision's at ``width=64``."""
    return nn.Sequential(
        nn.Conv3d(3, width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def r2plus1d_stem(width: int = 64) -> nn.Sequential:
    """R(2+1)D stem: spatial 1×7×7 then temporal 3×1×1 convolution (45 middle channels at 64)."""
    mid = max(1, round(45 * width / 64))
    return nn.Sequential(
        nn.Conv3d(3, mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, (3, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


_PAPER_R3D = Paper(
    title="A Closer Look at Spatiotemporal Convolutions for Action Recognition",
    authors="D. Tran, H. Wang, L. Torresani, J. Ray, Y. LeCun, M. Paluri",
    venue="CVPR",
    year=2018,
    url="https://arxiv.org/abs/1711.11248",
)
_INPUTS = {
    "video": InputSpec(3, 16, (112, 112), "RGB clip, Kinetics mean/std normalised; any T×H×W works")
}
_FORMAT = "torchvision state dicts (e.g. Kinetics-400 weights), keys unchanged"


def _card(name: str, summary: str, top1: float) -> ModelCard:
    return ModelCard(
        name=name,
        summary=summary,
        inputs=_INPUTS,
        num_classes=400,
        paper=_PAPER_R3D,
        reported_results=(
            ReportedResult(
                "Kinetics-400",
                "video top-1 (%)",
                top1,
                "torchvision model documentation",
                "Kinetics-400 weights; 5 clips of 16 frames at 112×112 per video",
            ),
        ),
        pretrained_format=_FORMAT,
        classifier=("fc",),
        docs="models/video_resnet.md",
    )


def _with_pretrained_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - {"dropout", "width"}
    if unknown:
        raise TypeError(f"unexpected model arguments: {sorted(unknown)} (accepted: dropout, width)")
    return kwargs


@register_model(_card("r3d_18", "18-layer ResNet with full 3×3×3 convolutions (R3D-18).", 63.2))
def r3d_18(num_classes: int = 400, **kwargs: Any) -> VideoResNetClassifier:
    """R3D-18: 3D ResNet-18 (33.4 M parameters at 400 classes)."""
    return VideoResNetClassifier(
        [Conv3DSimple] * 4, basic_stem, num_classes=num_classes, **_with_pretrained_kwargs(kwargs)
    )


@register_model(
    _card(
        "mc3_18",
        "Mixed-convolution ResNet-18: 3D convs in stage 1, 2D convs after (MC3-18).",
        63.96,
    )
)
def mc3_18(num_classes: int = 400, **kwargs: Any) -> VideoResNetClassifier:
    """MC3-18: 3D convolutions in the stem and first stage, (1×3×3) convolutions afterwards."""
    return VideoResNetClassifier(
        [Conv3DSimple] + [Conv3DNoTemporal] * 3,  # type: ignore[list-item]
        basic_stem,
        num_classes=num_classes,
        **_with_pretrained_kwargs(kwargs),
    )


@register_model(
    _card("r2plus1d_18", "ResNet-18 with (2+1)D factorised convolutions (R(2+1)D-18).", 67.46)
)
def r2plus1d_18(num_classes: int = 400, **kwargs: Any) -> VideoResNetClassifier:
    """R(2+1)D-18: every 3×3×3 convolution factorised into spatial 1×3×3 and temporal 3×1×1."""
    return VideoResNetClassifier(
        [Conv2Plus1D] * 4, r2plus1d_stem, num_classes=num_classes, **_with_pretrained_kwargs(kwargs)
    )
