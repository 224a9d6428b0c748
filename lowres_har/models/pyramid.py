"""Multi-scale ResNet-3D, ResNet-3D FPN and multi-scale FPN (the thesis' sections 3.6–3.8).

All three are built from :class:`lowres_har.models.resnet3d.ResNet3DBackbone` (AD-ResNet-3D
stages with torchvision's module names):

- :class:`MultiScaleResNet3D` (``ms_resnet3d_18|50``): one backbone per entry of
  ``input_sizes``; the clip is resized to each size inside ``forward``. After stages 1–3 every
  scale's output is concatenated (channels) to the next smaller scale's, which feeds the
  concatenation to its next stage; the stage-4 outputs are summed and classified once.
- :class:`FPNResNet3D` (``fpn_resnet3d_18|50``): a feature pyramid on one backbone: 1×1×1
  lateral convolutions of stages 1–4, a nearest-neighbour top-down pathway, one classifier per
  pyramid level, logits averaged.
- ``msfpn_resnet3d_18``: :class:`FPNResNet3D` whose bottom-up pathway is the multi-scale
  backbone (:class:`MultiScaleBackbone`); its laterals read the multi-scale concatenations.

Module docstrings and the model card (docs/models/pyramid_resnet3d.md) record the choices the
thesis leaves open.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lowres_har.models.heads import make_head
from lowres_har.models.resnet3d import (
    BLOCKS,
    INPUTS,
    MIN_MAP_SIZE,
    THESIS,
    ResNet3DBackbone,
    check_head,
)
from lowres_har.registry import InputSpec, ModelCard, ReportedResult, register_model

__all__ = [
    "COMBINE",
    "FPNResNet3D",
    "MultiScaleBackbone",
    "MultiScaleResNet3D",
    "fpn_resnet3d_18",
    "fpn_resnet3d_50",
    "ms_resnet3d_18",
    "ms_resnet3d_50",
    "msfpn_resnet3d_18",
    "resample",
    "resize_clip",
]

#: how the FPN combines its per-level logits.
COMBINE: tuple[str, ...] = ("mean", "sum")


def _pooling_matrix(n_in: int, n_out: int, like: Tensor) -> Tensor:
    """``(n_out, n_in)`` matrix of adaptive average pooling along one axis.

    Row ``i`` averages the inputs ``floor(i·n_in/n_out) … ceil((i+1)·n_in/n_out) - 1``, the
    bins of ``adaptive_avg_pool``.
    """
    rows = []
    for i in range(n_out):
        start, stop = (i * n_in) // n_out, -(-(i + 1) * n_in // n_out)
        rows.append([1.0 / (stop - start) if start <= j < stop else 0.0 for j in range(n_in)])
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def resample(x: Tensor, size: Sequence[int]) -> Tensor:
    """Resize a feature map ``(B, C, T, H, W)`` to ``(B, C, *size)``.

    Shrinking by integer factors averages blocks (``avg_pool3d`` with kernel = stride: area
    interpolation); other shrinking is adaptive average pooling, computed as one averaging
    matrix per axis (the same bins as ``adaptive_avg_pool3d``, which ONNX cannot export for
    such sizes); any enlargement is trilinear (``align_corners=False``). Equal sizes return
    ``x`` itself.
    """
    src = tuple(int(s) for s in x.shape[2:])
    dst = tuple(int(s) for s in size)
    if src == dst:
        return x
    if all(a >= b for a, b in zip(src, dst, strict=True)):
        if all(a % b == 0 for a, b in zip(src, dst, strict=True)):
            kernel = tuple(a // b for a, b in zip(src, dst, strict=True))
            return F.avg_pool3d(x, kernel_size=kernel, stride=kernel)
        for axis, spec in enumerate(("bcthw,Tt->bcThw", "bcthw,Hh->bctHw", "bcthw,Ww->bcthW")):
            if src[axis] != dst[axis]:
                x = torch.einsum(spec, x, _pooling_matrix(src[axis], dst[axis], x))
        return x
    return F.interpolate(x, size=dst, mode="trilinear", align_corners=False)


def resize_clip(video: Tensor, size: int) -> Tensor:
    """Resize every frame of ``video (B, C, T, H, W)`` to ``size × size`` (T unchanged).

    See :func:`resample`: area averaging when ``H`` and ``W`` are multiples of ``size`` (e.g.
    112 → 56 → 14), trilinear (bilinear per frame, no anti-aliasing) otherwise.
    """
    return resample(video, (video.shape[2], size, size))


def _check_sizes(input_sizes: Sequence[int], adapt: bool) -> tuple[int, ...]:
    if isinstance(input_sizes, int) or not isinstance(input_sizes, Sequence):
        raise ValueError(f"input_sizes must be a list of ints, got {input_sizes!r}")
    sizes = list(input_sizes)
    if not sizes:
        raise ValueError("input_sizes must name at least one size")
    low = MIN_MAP_SIZE if adapt else 1
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, int) or s < low:
            raise ValueError(
                f"input_sizes entries must be ints >= {low}"
                + (" (adapt_strides keeps a 7×7 last map)" if adapt else "")
                + f", got {s!r} in {sizes}"
            )
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"input_sizes must be distinct, got {sizes}")
    return tuple(sorted(sizes))


class MultiScaleBackbone(nn.Module):
    """The multi-scale ResNet-3D's bottom-up pathway (thesis section 3.6, Figure 3.7).

    ``scales[i]`` is a :class:`ResNet3DBackbone` whose strides are adapted to
    ``input_sizes[i]`` (sorted ascending). ``forward_features(video)``:

    1. resize the clip to each size (:func:`resize_clip`) and run each scale's stem;
    2. for stages ``j = 1, 2, 3``: every scale runs its stage ``j``; then every scale but the
       largest concatenates (channels) the next larger scale's stage-``j`` output, resized to
       its own map (:func:`resample`: block averaging), and feeds ``[own, larger]`` to its
       stage ``j + 1`` — whose first block therefore takes twice the channels;
    3. stage 4: the outputs of all scales, resized to the smallest scale's map, are summed.

    Returns four maps: the smallest scale's concatenations after stages 1–3
    (``2·C_j`` channels; ``C_j`` with a single scale) and the stage-4 sum (``C_4``). With
    adapted strides every scale ends at 7×7 for sizes 7·2^m, so the sum needs no resizing.
    Temporal strides are the same in all scales, so the maps share ``T``.

    Args:
        block, layers, adapt_strides, layout, conv1_t_size, max_pool, width: see
            :class:`ResNet3DBackbone`.
        input_sizes: one side per scale, distinct (e.g. ``(14, 56, 112)``, the thesis').
    """

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        *,
        input_sizes: Sequence[int] = (16, 32),
        adapt_strides: bool = True,
        layout: str = "torchvision",
        conv1_t_size: int | None = None,
        max_pool: bool | None = None,
        width: int = 64,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {list(BLOCKS)}")
        self.input_sizes = _check_sizes(input_sizes, adapt_strides)
        n = len(self.input_sizes)
        channels = [width * 2**i * BLOCKS[block].expansion for i in range(4)]
        self.scales = nn.ModuleList(
            ResNet3DBackbone(
                block,
                layers,
                input_size=size,
                adapt_strides=adapt_strides,
                layout=layout,
                conv1_t_size=conv1_t_size,
                max_pool=max_pool,
                width=width,
                lateral_channels=channels[:3] if i < n - 1 else (0, 0, 0),
            )
            for i, size in enumerate(self.input_sizes)
        )
        lateral = 2 if n > 1 else 1
        #: channels of the four maps ``forward_features`` returns.
        self.out_channels: tuple[int, ...] = (*(lateral * c for c in channels[:3]), channels[3])

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """``video (B, 3, T, H, W)`` → ``[concat_1, concat_2, concat_3, sum_4]`` (see class)."""
        scales: list[ResNet3DBackbone] = list(self.scales)  # type: ignore[arg-type]
        xs = [
            scale.stem(resize_clip(video, size))
            for scale, size in zip(scales, self.input_sizes, strict=True)
        ]
        feats: list[Tensor] = []
        for j in range(4):
            outs = [scale.stages[j](x) for scale, x in zip(scales, xs, strict=True)]
            if j < 3:
                xs = [
                    torch.cat([outs[i], resample(outs[i + 1], outs[i].shape[2:])], dim=1)
                    for i in range(len(outs) - 1)
                ] + [outs[-1]]
                feats.append(xs[0])
            else:
                top = outs[0]
                for out in outs[1:]:
                    top = top + resample(out, outs[0].shape[2:])
                feats.append(top)
        return feats

    def forward(self, video: Tensor) -> list[Tensor]:  # noqa: D102
        return self.forward_features(video)


def _check_dropout(dropout: float) -> None:
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


class MultiScaleResNet3D(nn.Module):
    """Multi-scale ResNet-3D: :class:`MultiScaleBackbone` + one head on the stage-4 sum.

    Input ``video (B, 3, T, H, W)`` (any size; resized to each of ``input_sizes`` inside
    ``forward``, so feed it at the largest size). Output logits ``(B, num_classes)``.
    ``forward_features`` returns the backbone's four maps, ``forward_head`` classifies the last.

    Args:
        block, layers, input_sizes, adapt_strides, layout, conv1_t_size, max_pool, width: see
            :class:`MultiScaleBackbone`.
        num_classes: number of logits.
        head: ``"avg"``, ``"attention"`` or ``"dfb"`` (:func:`lowres_har.models.heads.make_head`,
            stored as ``head``).
        head_kwargs: the head's options.
        dropout: dropout probability before the classifier(s).
    """

    input_keys: tuple[str, ...] = ("video",)

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 26,
        *,
        input_sizes: Sequence[int] = (16, 32),
        adapt_strides: bool = True,
        layout: str = "torchvision",
        conv1_t_size: int | None = None,
        max_pool: bool | None = None,
        width: int = 64,
        head: str = "avg",
        head_kwargs: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        options = check_head(head, head_kwargs)
        _check_dropout(dropout)
        self.backbone = MultiScaleBackbone(
            block,
            layers,
            input_sizes=input_sizes,
            adapt_strides=adapt_strides,
            layout=layout,
            conv1_t_size=conv1_t_size,
            max_pool=max_pool,
            width=width,
        )
        self.head_name = head
        self.head = make_head(
            head, self.backbone.out_channels[-1], num_classes, dropout=dropout, **options
        )

    @property
    def input_sizes(self) -> tuple[int, ...]:
        """The scales' sides, ascending."""
        return self.backbone.input_sizes

    @property
    def num_classes(self) -> int:
        """Number of logits."""
        return int(self.head.num_classes)  # type: ignore[arg-type]

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """The backbone's ``[concat_1, concat_2, concat_3, sum_4]`` maps."""
        return self.backbone.forward_features(video)

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Logits ``(B, num_classes)`` from the stage-4 sum ``features[-1]``."""
        return self.head(features[-1])

    def forward(self, video: Tensor) -> Tensor:  # noqa: D102
        return self.forward_head(self.forward_features(video))

    def reset_classifier(self, num_classes: int) -> None:
        """Give the head a freshly initialised classifier with ``num_classes`` outputs."""
        self.head.reset_classifier(num_classes)  # type: ignore[operator]


class FPNResNet3D(nn.Module):
    """ResNet-3D Feature Pyramid Network with a classifier per level (thesis 3.7, 3.8).

    With ``feats = backbone.forward_features(video)`` (four maps, fine to coarse) and ``d =
    fpn_channels``:

    - laterals: ``L_i = laterals[i](feats[i])``, 1×1×1 convolutions (with bias) to ``d``
      channels, ``i = 0..3`` (``laterals.3`` is the top of the pyramid, from stage 4);
    - top-down: ``P_4 = L_4``; ``P_i = L_i + nearest_upsample(P_{i+1}, size of L_i)`` for
      ``i = 3, 2, 1`` (upsampling resizes ``T`` too: stages 2–4 halve time); with ``smooth``
      each merged ``P_i`` (i < 4) passes a 3×3×3 convolution, as in Lin et al.'s FPN;
    - heads: ``heads[i]`` (:func:`lowres_har.models.heads.make_head`) classifies ``P_{i+1}``;
      with ``head_grid=(t, h, w)`` every level larger than that is first average-pooled to at
      most ``t×h×w`` (bounds the attention head's ``(T·H·W)²`` cost on the fine levels);
    - logits: the mean (``combine="mean"``) or sum of the four heads' logits.

    ``forward_features`` returns ``[P_1, P_2, P_3, P_4]`` (each ``(B, d, T_i, H_i, W_i)``) and
    ``forward_head`` applies the heads and combines their logits.

    Args:
        backbone: a :class:`ResNet3DBackbone` or :class:`MultiScaleBackbone` (anything with
            ``forward_features(video) -> 4 maps`` and ``out_channels``).
        num_classes: number of logits.
        fpn_channels: ``d`` (``None``: ``4 × the first stage's planes``, 256 at width 64).
        smooth: 3×3×3 convolution after each top-down merge.
        head, head_kwargs, dropout: see :class:`MultiScaleResNet3D`; every level gets its own
            head with the same options.
        combine: ``"mean"`` or ``"sum"`` of the per-level logits.
        head_grid: ``(t, h, w)`` upper bound of the map each head sees (``None``: full maps).
    """

    input_keys: tuple[str, ...] = ("video",)

    def __init__(
        self,
        backbone: ResNet3DBackbone | MultiScaleBackbone,
        num_classes: int = 26,
        *,
        fpn_channels: int | None = None,
        smooth: bool = False,
        head: str = "avg",
        head_kwargs: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        combine: str = "mean",
        head_grid: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        options = check_head(head, head_kwargs)
        _check_dropout(dropout)
        if combine not in COMBINE:
            raise ValueError(f"unknown combine {combine!r}; choose one of {list(COMBINE)}")
        channels = tuple(backbone.out_channels)
        if len(channels) != 4:
            raise ValueError(f"the backbone must give 4 maps, it gives {len(channels)}")
        if fpn_channels is None:
            first = backbone.width if isinstance(backbone, ResNet3DBackbone) else None
            if first is None:
                first = backbone.scales[0].width  # type: ignore[union-attr,index]
            fpn_channels = 4 * int(first)
        if isinstance(fpn_channels, bool) or not isinstance(fpn_channels, int) or fpn_channels < 1:
            raise ValueError(f"fpn_channels must be a positive int, got {fpn_channels!r}")
        if head_grid is not None:
            head_grid = tuple(head_grid)
            if len(head_grid) != 3 or any(
                isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in head_grid
            ):
                raise ValueError(
                    f"head_grid must be three positive ints (t, h, w), got {head_grid}"
                )
        self.backbone = backbone
        self.fpn_channels = fpn_channels
        self.combine = combine
        self.head_name = head
        self.head_grid: tuple[int, ...] | None = None if head_grid is None else tuple(head_grid)
        self.laterals = nn.ModuleList(nn.Conv3d(c, fpn_channels, 1) for c in channels)
        self.smooth = (
            nn.ModuleList(nn.Conv3d(fpn_channels, fpn_channels, 3, padding=1) for _ in range(3))
            if smooth
            else None
        )
        convs = [*self.laterals, *(self.smooth or [])]
        for conv in convs:  # Detectron's FPN initialisation ("c2_xavier_fill")
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)
        self.heads = nn.ModuleList(
            make_head(head, fpn_channels, num_classes, dropout=dropout, **options) for _ in channels
        )

    @property
    def num_classes(self) -> int:
        """Number of logits."""
        return int(self.heads[0].num_classes)  # type: ignore[arg-type]

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """Pyramid levels ``[P_1, P_2, P_3, P_4]``, each ``(B, fpn_channels, T_i, H_i, W_i)``."""
        feats = self.backbone.forward_features(video)
        lat = [conv(f) for conv, f in zip(self.laterals, feats, strict=True)]
        levels: list[Tensor] = [lat[3]]
        for i in (2, 1, 0):
            up = F.interpolate(levels[0], size=tuple(lat[i].shape[2:]), mode="nearest")
            merged = lat[i] + up
            if self.smooth is not None:
                merged = self.smooth[i](merged)
            levels.insert(0, merged)
        return levels

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Combined logits ``(B, num_classes)`` of the per-level heads."""
        logits = []
        for head, level in zip(self.heads, features, strict=True):
            if self.head_grid is not None:
                size = [
                    min(int(s), g) for s, g in zip(level.shape[2:], self.head_grid, strict=True)
                ]
                level = resample(level, size)
            logits.append(head(level))
        stacked = torch.stack(logits, dim=0)
        return stacked.mean(0) if self.combine == "mean" else stacked.sum(0)

    def forward(self, video: Tensor) -> Tensor:  # noqa: D102
        return self.forward_head(self.forward_features(video))

    def reset_classifier(self, num_classes: int) -> None:
        """Give every level's head a freshly initialised classifier with ``num_classes`` outputs."""
        for head in self.heads:
            head.reset_classifier(num_classes)  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Builders and registration

_BACKBONE_KEYS = ("adapt_strides", "layout", "conv1_t_size", "max_pool", "width")
_HEAD_KEYS = ("head", "head_kwargs", "dropout")
_FPN_KEYS = ("fpn_channels", "smooth", "combine", "head_grid")


def _split(kwargs: dict[str, Any], size_key: str, fpn: bool) -> tuple[dict[str, Any], ...]:
    accepted = (size_key, *_BACKBONE_KEYS, *_HEAD_KEYS, *(_FPN_KEYS if fpn else ()))
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"unexpected model arguments: {unknown} (accepted: {', '.join(accepted)})")
    backbone = {k: v for k, v in kwargs.items() if k in (size_key, *_BACKBONE_KEYS)}
    rest = {k: v for k, v in kwargs.items() if k not in backbone}
    return backbone, rest


def _ms(block: str, layers: Sequence[int], num_classes: int, kwargs: dict[str, Any]) -> Any:
    backbone, rest = _split(kwargs, "input_sizes", fpn=False)
    return MultiScaleResNet3D(block, layers, num_classes, **backbone, **rest)


def _fpn(block: str, layers: Sequence[int], num_classes: int, kwargs: dict[str, Any]) -> Any:
    backbone, rest = _split(kwargs, "input_size", fpn=True)
    return FPNResNet3D(ResNet3DBackbone(block, layers, **backbone), num_classes, **rest)


def _msfpn(block: str, layers: Sequence[int], num_classes: int, kwargs: dict[str, Any]) -> Any:
    backbone, rest = _split(kwargs, "input_sizes", fpn=True)
    return FPNResNet3D(MultiScaleBackbone(block, layers, **backbone), num_classes, **rest)


def _results(table: str, rows: Sequence[tuple[float, float, float, str]]) -> list[ReportedResult]:
    out = []
    for f1, p, r, setting in rows:
        for metric, value in (("F1 (%)", f1), ("precision (%)", p), ("recall (%)", r)):
            out.append(
                ReportedResult(
                    "TinyVIRAT-v2 test", metric, value, f"thesis, Table {table}", setting
                )
            )
    return out


_MS_CHOICES = {
    "input_sizes": "(16, 32): the project's 32×32 low-resolution clips, and cheap enough for "
    "the per-model test suite; the thesis' network is input_sizes=(14, 56, 112) on 112×112 "
    "clips. Sorted ascending, distinct; the clip is resized to each inside forward (block "
    "averaging for integer factors, else adaptive average pooling / trilinear upsampling)",
    "lateral": "after stages 1-3 each scale's output, block-averaged to the next smaller scale's "
    "map, is concatenated to that scale's output, which feeds the concatenation (2·C channels) "
    "to its next stage; the larger scale itself continues with its own output",
    "stage-4 fusion": "outputs of all scales resized to the smallest scale's map and summed, "
    "then one head",
    "adapt_strides": "True: every scale adapts to its own size (7×7 last maps); the thesis' "
    "multi-scale rows (Tables 4.4, 4.11) used standard-stride backbones: adapt_strides=False",
}
_FPN_CHOICES = {
    "laterals": "1×1×1 Conv3d with bias from stages 1-4 to fpn_channels (stage 4 = pyramid top)",
    "fpn_channels": "4 × width (256 at width 64, for ResNet-18 and -50 alike)",
    "top-down": "nearest-neighbour upsampling to the lateral's T×H×W, added; smooth=False (no "
    "3×3×3 convolution after the merge; smooth=True adds it)",
    "heads": "one head per level (4), same kind and options; head_grid=(t, h, w) pools levels "
    "larger than that before their head (None: full maps)",
    "combine": "mean of the four levels' logits ('sum' available)",
}
_BACKBONE_CHOICES = {
    "layout": "'torchvision' (default) or '3d-resnets' (the thesis' Kinetics-700 networks); see "
    "the ad_resnet3d cards",
    "width": "64 (the standard network); 16 for CPU-sized runs",
    "head": "avg (default), attention or dfb (lowres_har.models.heads); head_kwargs, dropout",
    "num_classes": "26 (TinyVIRAT-v2)",
}

MS_INPUTS = {
    "video": InputSpec(
        3,
        16,
        (32, 32),
        "RGB clip, Kinetics mean/std normalised, at the largest of input_sizes (default 16/32; "
        "the thesis' 14/56/112 takes 112×112); resized to every scale inside forward",
    )
}
_MS18_RESULTS = _results(
    "4.4",
    [(33.6, 33.8, 38.3, "input sizes 14/56/112, standard-stride ResNet18 backbones, random clip")],
)
_FPN18_RESULTS = [
    *_results("4.4", [(33.1, 32.7, 40.4, "112×112, standard strides, random clip")]),
    *_results(
        "4.5",
        [
            (36.7, 38.8, 38.6, "112×112, adapted strides (AD), random clip"),
            (36.3, 34.3, 46.0, "AD, segment sampling"),
            (38.8, 36.1, 45.4, "AD, segment sampling, augmentation"),
            (40.6, 40.0, 45.5, "AD, segment, augmentation, hflip TTA"),
            (41.0, 44.7, 40.8, "AD, segment, augmentation, hflip TTA, tuned threshold"),
            (41.2, 44.9, 41.2, "AD, segment, augmentation, 5-clip TTA, tuned threshold"),
        ],
    ),
    *_results("4.7", [(39.2, 38.5, 46.9, "AD, augmentation, hflip TTA, attention pooling")]),
    *_results("4.9", [(37.7, 36.5, 42.3, "AD, augmentation, hflip TTA, discriminative filters")]),
]
_FPN50_RESULTS = [
    *_results(
        "4.12",
        [(42.2, 42.6, 45.7, "112×112 AD, segment, augmentation, hflip TTA, threshold 0.35, BCE")],
    ),
    *_results("4.10", [(40.5, 52.2, 35.3, "as Table 4.12 but asymmetric loss")]),
]
_MSFPN18_RESULTS = [
    *_results(
        "4.4",
        [(34.9, 34.6, 40.0, "input sizes 14/56/112, standard-stride backbone, BCE")],
    ),
    *_results("4.11", [(36.2, 40.9, 34.9, "as Table 4.4 but asymmetric loss")]),
]


def _card(
    name: str,
    summary: str,
    choices: dict[str, str],
    results: Sequence[ReportedResult],
    classifier: tuple[str, ...],
    inputs: dict[str, InputSpec] = INPUTS,
) -> ModelCard:
    return ModelCard(
        name=name,
        summary=summary,
        inputs=inputs,
        num_classes=26,
        paper=THESIS,
        choices={**choices, **_BACKBONE_CHOICES},
        reported_results=tuple(results),
        pretrained_format=(
            "lowres-har checkpoints; ResNet backbone weights (torchvision or converted "
            "3D-ResNets-PyTorch) through lowres_har.models.resnet3d.load_backbone_weights"
        ),
        classifier=classifier,
        docs="models/pyramid_resnet3d.md",
    )


@register_model(
    _card(
        "ms_resnet3d_18",
        "Multi-scale ResNet-3D-18: one AD-ResNet-18 per input size, lateral concatenations.",
        _MS_CHOICES,
        _MS18_RESULTS,
        ("head.fc", "head"),
        MS_INPUTS,
    )
)
def ms_resnet3d_18(num_classes: int = 26, **kwargs: Any) -> MultiScaleResNet3D:
    """Multi-scale ResNet-3D-18 (basic blocks); options of :class:`MultiScaleResNet3D`."""
    return _ms("basic", (2, 2, 2, 2), num_classes, kwargs)  # type: ignore[no-any-return]


@register_model(
    _card(
        "ms_resnet3d_50",
        "Multi-scale ResNet-3D-50: one AD-ResNet-50 per input size, lateral concatenations.",
        _MS_CHOICES,
        (),
        ("head.fc", "head"),
        MS_INPUTS,
    )
)
def ms_resnet3d_50(num_classes: int = 26, **kwargs: Any) -> MultiScaleResNet3D:
    """Multi-scale ResNet-3D-50 (bottlenecks); options of :class:`MultiScaleResNet3D`."""
    return _ms("bottleneck", (3, 4, 6, 3), num_classes, kwargs)  # type: ignore[no-any-return]


_FPN_SIZE = {"input_size": "112 (the thesis'); only sets the backbone's strides"}


@register_model(
    _card(
        "fpn_resnet3d_18",
        "ResNet-3D-18 feature pyramid with a classifier per level (FPN AD-ResNet18).",
        {**_FPN_SIZE, **_FPN_CHOICES},
        _FPN18_RESULTS,
        ("heads.0.fc", "heads"),
    )
)
def fpn_resnet3d_18(num_classes: int = 26, **kwargs: Any) -> FPNResNet3D:
    """FPN over an AD-ResNet-3D-18; ``input_size`` + options of :class:`FPNResNet3D`."""
    return _fpn("basic", (2, 2, 2, 2), num_classes, kwargs)  # type: ignore[no-any-return]


@register_model(
    _card(
        "fpn_resnet3d_50",
        "ResNet-3D-50 feature pyramid with a classifier per level (FPN AD-ResNet50).",
        {**_FPN_SIZE, **_FPN_CHOICES},
        _FPN50_RESULTS,
        ("heads.0.fc", "heads"),
    )
)
def fpn_resnet3d_50(num_classes: int = 26, **kwargs: Any) -> FPNResNet3D:
    """FPN over an AD-ResNet-3D-50; ``input_size`` + options of :class:`FPNResNet3D`."""
    return _fpn("bottleneck", (3, 4, 6, 3), num_classes, kwargs)  # type: ignore[no-any-return]


@register_model(
    _card(
        "msfpn_resnet3d_18",
        "Multi-scale FPN: a feature pyramid over the multi-scale ResNet-3D-18.",
        {
            **_MS_CHOICES,
            **_FPN_CHOICES,
            "pyramid inputs": "the smallest scale's concatenations after stages 1-3 (its own "
            "output + the next larger scale's, 2·C channels) and the stage-4 sum",
        },
        _MSFPN18_RESULTS,
        ("heads.0.fc", "heads"),
        MS_INPUTS,
    )
)
def msfpn_resnet3d_18(num_classes: int = 26, **kwargs: Any) -> FPNResNet3D:
    """FPN over the multi-scale ResNet-3D-18; ``input_sizes`` + :class:`FPNResNet3D` options."""
    return _msfpn("basic", (2, 2, 2, 2), num_classes, kwargs)  # type: ignore[no-any-return]
