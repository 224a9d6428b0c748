"""Compact C3D-style network for low-resolution clips (``c3d_tiny``).

C3D (Tran et al., ICCV 2015) stacks 3×3×3 convolutions with max pooling: 1×2×2 after the first
convolution (keep early temporal detail), 2×2×2 afterwards. ``c3d_tiny`` keeps that design at a
size that suits 12×16 – 32×32 inputs: four convolution blocks (with BatchNorm) of
``width × (1, 2, 4, 4)`` channels, global average pooling and one linear classifier instead of
C3D's 4096-wide FC6/FC7. Max pooling keeps the few strong responses a person covering a handful
of pixels produces, which strided convolutions and averaging dilute.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lowres_har.registry import InputSpec, ModelCard, Paper, register_model

__all__ = ["C3DTiny", "c3d_tiny"]


def _conv_block(cin: int, cout: int, stride: tuple[int, int, int] = (1, 1, 1)) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class C3DTiny(nn.Module):
    """Four 3×3×3 convolution blocks with C3D-style max pooling.

    Shapes for the default ``video`` ``(B, 3, 16, 32, 32)``: block 1 (stride 1×2×2, then max-pool
    1×2×2) → ``(B, w, 16, 8, 8)``; block 2 + max-pool 2×2×2 → ``(B, 2w, 8, 4, 4)``; block 3 +
    max-pool 2×2×2 → ``(B, 4w, 4, 2, 2)``; block 4 → ``(B, 4w, 4, 2, 2)``; global average pool,
    dropout and a linear layer → logits ``(B, num_classes)``.

    Args:
        num_classes: classifier outputs.
        width: channels of the first block (blocks have ``width × (1, 2, 4, 4)``).
        dropout: dropout before the classifier.
        in_channels: input channels (3 for RGB).
    """

    input_keys: tuple[str, ...] = ("video",)

    def __init__(
        self, num_classes: int = 400, width: int = 32, dropout: float = 0.3, in_channels: int = 3
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.block1 = nn.Sequential(
            _conv_block(in_channels, width, (1, 2, 2)), nn.MaxPool3d((1, 2, 2))
        )
        self.block2 = nn.Sequential(_conv_block(width, 2 * width), nn.MaxPool3d(2))
        self.block3 = nn.Sequential(_conv_block(2 * width, 4 * width), nn.MaxPool3d(2))
        self.block4 = _conv_block(4 * width, 4 * width)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """Outputs of the four blocks, ``[(B, C_i, T_i, H_i, W_i)] * 4``."""
        feats = []
        x = video
        for block in (self.block1, self.block2, self.block3, self.block4):
            x = block(x)
            feats.append(x)
        return feats

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Logits ``(B, num_classes)`` from the last block's features."""
        return self.fc(self.drop(self.pool(features[-1]).flatten(1)))

    def forward(self, video: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(video))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one of ``num_classes`` outputs."""
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        nn.init.normal_(self.fc.weight, 0, 0.01)
        nn.init.zeros_(self.fc.bias)


@register_model(
    ModelCard(
        name="c3d_tiny",
        summary="Compact C3D-style 3D CNN (4 conv blocks + max pooling) for 12×16 – 32×32 clips.",
        inputs={
            "video": InputSpec(
                3, 16, (32, 32), "RGB clip (e.g. eLR 12×16 upsampled), mean/std normalised"
            )
        },
        num_classes=400,
        paper=Paper(
            title="Learning Spatiotemporal Features with 3D Convolutional Networks",
            authors="D. Tran, L. Bourdev, R. Fergus, L. Torresani, M. Paluri",
            venue="ICCV",
            year=2015,
            url="https://arxiv.org/abs/1412.0767",
        ),
        choices={
            "depth": "4 conv blocks instead of C3D's 8 (inputs are 12×16 – 32×32, not 112×112)",
            "normalisation": "BatchNorm after every convolution (C3D had none)",
            "first block": "spatial stride 2 and 1×2×2 max pooling, as C3D's pool1 keeps time",
            "head": "global average pool + dropout + linear instead of FC6/FC7 (4096 units)",
            "width": "width × (1, 2, 4, 4) channels; default 32 (about 0.9 M parameters)",
        },
        classifier=("fc",),
        docs="models/c3d_tiny.md",
    )
)
def c3d_tiny(num_classes: int = 400, **kwargs: Any) -> C3DTiny:
    """Compact C3D-style network; ``width`` (default 32), ``dropout`` (0.3), ``in_channels`` (3)."""
    return C3DTiny(num_classes=num_classes, **kwargs)
