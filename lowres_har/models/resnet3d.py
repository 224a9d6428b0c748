"""AD-ResNet-3D: 3D ResNet-18/34/50 whose spatial strides adapt to small inputs.

The thesis behind issue 6 (``../shared/seeds/001_45438603c7ea17ce.txt``, section 3.2) keeps the
last stage of a 3D ResNet at a 7×7 map for inputs smaller than 224×224 by setting stride 1 in the
first ``log2(224 / input_size)`` stride-2 operations. This module builds such networks from
torchvision's video ResNet blocks (``BasicBlock``, ``Bottleneck``, ``Conv3DSimple``), so the
parameter names are torchvision's (``stem.0``, ``stem.1``, ``layerX.Y.conv1.0``,
``layerX.Y.downsample.0``, ``fc``) and torchvision's ``r3d_18`` state dicts load strictly.

Two stem layouts:

- ``"torchvision"`` (the default): conv1 3×7×7, stride (1, 2, 2), no max-pool. Four spatial
  stride-2 operations (stem convolution, stages 2–4): a 112×112 input ends at 7×7.
- ``"3d-resnets"``: the layout of the 3D-ResNets-PyTorch repository (Hara et al.) whose
  Kinetics-700 weights the thesis starts from: conv1 7×7×7, stride (1, 2, 2), then a 3×3×3
  max-pool with stride 2 (also in time). Five spatial stride-2 operations: 224×224 ends at 7×7.

:func:`convert_3d_resnets_state_dict`, :func:`load_3d_resnets_checkpoint` and
:func:`convert_3d_resnets_checkpoint` read checkpoints of that repository.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models.video.resnet import BasicBlock, Bottleneck, Conv3DSimple

from lowres_har.models.heads import HEADS, make_head
from lowres_har.registry import InputSpec, ModelCard, Paper, ReportedResult, register_model

__all__ = [
    "BLOCKS",
    "LAYOUTS",
    "MIN_MAP_SIZE",
    "ResNet3D",
    "ResNet3DBackbone",
    "ad_resnet3d_18",
    "ad_resnet3d_34",
    "ad_resnet3d_50",
    "check_head",
    "convert_3d_resnets_checkpoint",
    "convert_3d_resnets_state_dict",
    "load_3d_resnets_checkpoint",
    "load_backbone_weights",
    "read_3d_resnets_checkpoint",
    "spatial_strides",
]

log = logging.getLogger("lowres_har")

#: stem layouts: ``"torchvision"`` (conv1 3×7×7, no max-pool) or ``"3d-resnets"`` (7×7×7 + pool).
LAYOUTS: tuple[str, ...] = ("torchvision", "3d-resnets")
#: residual block kinds: torchvision's ``BasicBlock`` (ResNet-18/34) and ``Bottleneck`` (50).
BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}
#: the side of the last stage's map that stride adaptation aims for (the thesis' 7×7).
MIN_MAP_SIZE = 7


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def spatial_strides(
    input_size: int, num_ops: int, *, adapt: bool = True, min_size: int = MIN_MAP_SIZE
) -> tuple[int, ...]:
    """Spatial stride (1 or 2) of each of a network's ``num_ops`` stride-2 operations.

    Every stride-2 operation maps a side ``s`` to ``ceil(s / 2)``. With ``adapt`` the rule keeps
    the **last** ``k`` operations at stride 2 and sets the first ``num_ops - k`` to stride 1,
    where ``k`` is the largest number of halvings that leaves the last map at ``>= min_size``.
    For ``input_size = 7 · 2^m`` that is the thesis' rule (``num_ops - m`` stride-1
    operations, last map exactly 7×7); for other sizes the last map is the smallest one
    ``>= 7``: 32 → 8×8, 48 → 12×12 (``ceil``), 224 with four operations → 14×14 (the
    network cannot halve more often than it has operations).

    Args:
        input_size: side of the (square) input in pixels; ``>= min_size`` when ``adapt``.
        num_ops: number of spatial stride-2 operations of the standard network (4 for the
            torchvision layout, 5 with the 3D-ResNets max-pool).
        adapt: ``False`` returns all 2s (the standard network).
        min_size: the smallest side the last map may have.

    Returns:
        ``num_ops`` strides, in network order.

    Raises:
        ValueError: ``input_size < min_size`` (no stride assignment reaches ``min_size``).
    """
    _check_int("num_ops", num_ops, 0)
    if not adapt:
        return (2,) * num_ops
    _check_int("input_size", input_size, 1)
    if input_size < min_size:
        raise ValueError(
            f"input_size={input_size} is smaller than the {min_size}×{min_size} map stride "
            f"adaptation keeps; use input_size >= {min_size} or adapt_strides=False"
        )
    keep, side = 0, input_size
    while keep < num_ops and math.ceil(side / 2) >= min_size:
        side = math.ceil(side / 2)
        keep += 1
    return (1,) * (num_ops - keep) + (2,) * keep


def _resolve_layout(
    layout: str, conv1_t_size: int | None, max_pool: bool | None
) -> tuple[int, bool]:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {list(LAYOUTS)}")
    default_t, default_pool = (3, False) if layout == "torchvision" else (7, True)
    t = default_t if conv1_t_size is None else conv1_t_size
    _check_int("conv1_t_size", t, 1)
    if t % 2 == 0:
        raise ValueError(f"conv1_t_size must be odd (same padding in time), got {t}")
    return t, default_pool if max_pool is None else bool(max_pool)


def check_head(head: str, head_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a ``head`` name and return its options as a dict.

    Raises:
        ValueError: ``head`` is not one of :data:`lowres_har.models.heads.HEADS`.
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose one of {list(HEADS)}")
    return dict(head_kwargs or {})


def _make_stage(
    block: type[BasicBlock] | type[Bottleneck],
    inplanes: int,
    planes: int,
    blocks: int,
    stride: tuple[int, int, int],
) -> nn.Sequential:
    """One ResNet stage with torchvision's module names (``0.conv1.0``, ``0.downsample.0``).

    Unlike torchvision's ``VideoResNet._make_layer`` the stride is a ``(t, h, w)`` triple, so the
    spatial stride can be 1 while the temporal stride stays 2.
    """
    out = planes * block.expansion
    downsample = None
    if stride != (1, 1, 1) or inplanes != out:
        downsample = nn.Sequential(
            nn.Conv3d(inplanes, out, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm3d(out),
        )
    layers: list[nn.Module] = [
        block(inplanes, planes, Conv3DSimple, stride, downsample)  # type: ignore[arg-type]
    ]
    layers += [block(out, planes, Conv3DSimple) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet3DBackbone(nn.Module):
    """Stem and four stages of a 3D ResNet, with spatial strides adapted to ``input_size``.

    Input ``video (B, 3, T, H, W)``. The stem (conv1 ``(t, 7, 7)`` + BN + ReLU, optionally the
    3×3×3 max-pool) and the four stages keep torchvision's module names (``stem.0``,
    ``layer1`` … ``layer4``). Stages have ``width × (1, 2, 4, 8)`` planes (``× 4`` output
    channels for bottlenecks). Only the spatial strides adapt (see :func:`spatial_strides`);
    the temporal strides are the standard network's: 1 in the stem convolution, 2 in the
    max-pool (when present) and in stages 2–4. Any ``T, H, W >= 1`` runs: ``input_size`` only
    decides the strides.

    Args:
        block: ``"basic"`` (ResNet-18/34) or ``"bottleneck"`` (ResNet-50).
        layers: residual blocks per stage, e.g. ``(2, 2, 2, 2)``.
        input_size: side of the input the strides are chosen for (>= 7 with ``adapt_strides``).
        adapt_strides: ``False`` gives the standard strides whatever ``input_size``.
        layout: ``"torchvision"`` (conv1 3×7×7, no max-pool) or ``"3d-resnets"`` (7×7×7 and
            the max-pool), see the module docstring.
        conv1_t_size: temporal kernel of conv1 (odd); ``None`` takes the layout's.
        max_pool: the 3×3×3, stride-2 max-pool after the stem; ``None`` takes the layout's.
        width: planes of the first stage (64 is the standard network).
        lateral_channels: extra input channels of stages 2, 3, 4 (the multi-scale network
            concatenates a larger scale's features to their input); ``(0, 0, 0)`` normally.
    """

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        *,
        input_size: int = 112,
        adapt_strides: bool = True,
        layout: str = "torchvision",
        conv1_t_size: int | None = None,
        max_pool: bool | None = None,
        width: int = 64,
        lateral_channels: Sequence[int] = (0, 0, 0),
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {list(BLOCKS)}")
        layers = tuple(layers)
        if len(layers) != 4:
            raise ValueError(f"layers must give 4 stages, got {layers!r}")
        for n in layers:
            _check_int("blocks per stage", n, 1)
        _check_int("width", width, 1)
        _check_int("input_size", input_size, 1)
        lateral_channels = tuple(lateral_channels)
        if len(lateral_channels) != 3:
            raise ValueError(f"lateral_channels must give stages 2-4, got {lateral_channels!r}")
        for c in lateral_channels:
            _check_int("lateral_channels", c, 0)
        t_size, pool = _resolve_layout(layout, conv1_t_size, max_pool)
        self.block = block
        self.layers = layers
        self.input_size = input_size
        self.adapt_strides = adapt_strides
        self.layout = layout
        self.conv1_t_size = t_size
        self.max_pool = pool
        self.width = width
        #: spatial stride of each stride-2 operation: stem conv, [max-pool], stages 2, 3, 4.
        self.spatial_strides = spatial_strides(input_size, 4 + pool, adapt=adapt_strides)
        s = self.spatial_strides
        cls = BLOCKS[block]

        stem: list[nn.Module] = [
            nn.Conv3d(
                3,
                width,
                (t_size, 7, 7),
                stride=(1, s[0], s[0]),
                padding=(t_size // 2, 3, 3),
                bias=False,
            ),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        ]
        if pool:
            stem.append(nn.MaxPool3d(3, stride=(2, s[1], s[1]), padding=1))
        self.stem = nn.Sequential(*stem)
        inplanes = width
        channels = []
        for i, blocks in enumerate(layers):
            stride = (1, 1, 1) if i == 0 else (2, s[i - 4], s[i - 4])
            extra = 0 if i == 0 else lateral_channels[i - 1]
            stage = _make_stage(cls, inplanes + extra, width * 2**i, blocks, stride)
            setattr(self, f"layer{i + 1}", stage)
            inplanes = width * 2**i * cls.expansion
            channels.append(inplanes)
        #: channels of the four stage outputs.
        self.out_channels: tuple[int, ...] = tuple(channels)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    @property
    def stages(self) -> list[nn.Module]:
        """``[layer1, layer2, layer3, layer4]``."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def map_sizes(self, size: int | None = None) -> tuple[int, ...]:
        """Spatial side after the stem and after each stage for a ``size × size`` input.

        ``size`` defaults to ``input_size``. Returns 5 ints: stem (after the max-pool, if any),
        stages 1–4. With adapted strides the last one is 7 for 14, 28, 56, 112 (and 224 in
        the 3D-ResNets layout).
        """
        side = self.input_size if size is None else _check_int("size", size, 1)
        s = self.spatial_strides
        sides = []
        side = math.ceil(side / s[0])
        if self.max_pool:
            side = math.ceil(side / s[1])
        sides.append(side)
        sides.append(side)  # stage 1 keeps the size
        for stride in s[-3:]:
            side = math.ceil(side / stride)
            sides.append(side)
        return tuple(sides)

    def forward_features(self, video: Tensor) -> list[Tensor]:
        """Stage outputs ``[(B, C_i, T_i, H_i, W_i)] * 4`` for ``video (B, 3, T, H, W)``."""
        x = self.stem(video)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, video: Tensor) -> list[Tensor]:  # noqa: D102
        return self.forward_features(video)


class ResNet3D(ResNet3DBackbone):
    """AD-ResNet-3D: :class:`ResNet3DBackbone` plus a classification head.

    Input ``video (B, 3, T, H, W)`` float (Kinetics mean/std normalised), any ``T, H, W``.
    Output logits ``(B, num_classes)``.

    With ``head="avg"`` the head is torchvision's: ``avgpool`` (global average), optional
    dropout, ``fc`` — top-level names, so with ``layout="torchvision"``, ``width=64`` and
    ``adapt_strides=False`` (or ``input_size=112``, which needs no adaptation) a torchvision
    ``r3d_18`` state dict loads with ``strict=True`` into the 18-layer network and computes the
    same function. ``head="attention"`` or ``"dfb"`` puts a
    :func:`lowres_har.models.heads.make_head` head under ``head`` instead (no ``fc``).

    Args:
        block, layers, input_size, adapt_strides, layout, conv1_t_size, max_pool, width: see
            :class:`ResNet3DBackbone`.
        num_classes: number of logits.
        head: ``"avg"``, ``"attention"`` or ``"dfb"``.
        head_kwargs: options of the head (``num_heads``, ``filters_per_class``, ...).
        dropout: dropout probability before the classifier(s).
    """

    input_keys: tuple[str, ...] = ("video",)

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        num_classes: int = 400,
        *,
        input_size: int = 112,
        adapt_strides: bool = True,
        layout: str = "torchvision",
        conv1_t_size: int | None = None,
        max_pool: bool | None = None,
        width: int = 64,
        head: str = "avg",
        head_kwargs: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            block,
            layers,
            input_size=input_size,
            adapt_strides=adapt_strides,
            layout=layout,
            conv1_t_size=conv1_t_size,
            max_pool=max_pool,
            width=width,
        )
        options = check_head(head, head_kwargs)
        _check_int("num_classes", num_classes, 1)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.head_name = head
        channels = self.out_channels[-1]
        self.head: nn.Module | None = None
        if head == "avg":
            if options:
                raise ValueError(f"head 'avg' takes no options, got {sorted(options)}")
            self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
            self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
            self.fc = self._new_fc(channels, num_classes)
        else:
            self.head = make_head(head, channels, num_classes, dropout=dropout, **options)

    @staticmethod
    def _new_fc(channels: int, num_classes: int) -> nn.Linear:
        fc = nn.Linear(channels, num_classes)
        nn.init.normal_(fc.weight, 0, 0.01)
        nn.init.zeros_(fc.bias)
        return fc

    @property
    def num_classes(self) -> int:
        """Number of logits."""
        if self.head is not None:
            return int(self.head.num_classes)  # type: ignore[arg-type]
        return int(self.fc.out_features)

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Logits ``(B, num_classes)`` from the last stage's map ``features[-1]``."""
        x = features[-1]
        if self.head is not None:
            return self.head(x)
        return self.fc(self.drop(self.avgpool(x).flatten(1)))

    def forward(self, video: Tensor) -> Tensor:  # type: ignore[override]  # noqa: D102
        return self.forward_head(self.forward_features(video))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a freshly initialised one with ``num_classes`` outputs."""
        _check_int("num_classes", num_classes, 1)
        if self.head is not None:
            self.head.reset_classifier(num_classes)  # type: ignore[operator]
        else:
            self.fc = self._new_fc(int(self.fc.in_features), num_classes).to(self.fc.weight.device)


# --------------------------------------------------------------------------------------------
# Weights: torchvision state dicts load directly; 3D-ResNets-PyTorch checkpoints are converted.

_3DR_LAYER = re.compile(r"^(layer\d+\.\d+)\.(conv|bn)(\d)\.(.+)$")
_3DR_KEEP = re.compile(r"^(layer\d+\.\d+\.downsample\.[01]\..+|fc\.(weight|bias))$")


def convert_3d_resnets_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a 3D-ResNets-PyTorch state dict (Hara et al.) to lowres-har / torchvision keys.

    ``conv1.weight → stem.0.weight``, ``bn1.* → stem.1.*``, ``layerX.Y.convN.weight →
    layerX.Y.convN.0.weight``, ``layerX.Y.bnN.* → layerX.Y.convN.1.*``; ``downsample.0/1`` and
    ``fc`` keep their names. A ``module.`` prefix (``DataParallel``) is removed. Tensors are
    not copied or changed.

    Raises:
        ValueError: a key that no ResNet of that repository has (the message names them), e.g.
            a ResNeXt, DenseNet or pre-activation checkpoint.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        if name == "conv1.weight":
            out["stem.0.weight"] = value
        elif name.startswith("bn1."):
            out["stem.1." + name[len("bn1.") :]] = value
        elif m := _3DR_LAYER.match(name):
            prefix, kind, index, rest = m.groups()
            out[f"{prefix}.conv{index}.{0 if kind == 'conv' else 1}.{rest}"] = value
        elif _3DR_KEEP.match(name):
            out[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            "not a 3D-ResNets-PyTorch ResNet state dict; unknown keys: " + ", ".join(unknown[:10])
        )
    if "stem.0.weight" not in out:
        raise ValueError("not a 3D-ResNets-PyTorch ResNet state dict: no conv1.weight")
    return out


_DEPTHS: dict[tuple[str, tuple[int, ...]], int] = {
    ("basic", (1, 1, 1, 1)): 10,
    ("basic", (2, 2, 2, 2)): 18,
    ("basic", (3, 4, 6, 3)): 34,
    ("bottleneck", (3, 4, 6, 3)): 50,
    ("bottleneck", (3, 4, 23, 3)): 101,
    ("bottleneck", (3, 8, 36, 3)): 152,
    ("bottleneck", (3, 24, 36, 3)): 200,
}


def _describe(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Architecture of a converted (lowres-har keys) ResNet state dict."""
    block = "bottleneck" if any(k.endswith("conv3.0.weight") for k in state) else "basic"
    layers = []
    for i in range(1, 5):
        ids = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{i}.")}
        if not ids:
            raise ValueError(f"state dict has no layer{i}")
        layers.append(max(ids) + 1)
    conv1 = state["stem.0.weight"]
    if conv1.ndim != 5 or conv1.shape[1] != 3 or tuple(conv1.shape[3:]) != (7, 7):
        raise ValueError(f"conv1.weight has shape {tuple(conv1.shape)}, not (C, 3, t, 7, 7)")
    fc = state.get("fc.weight")
    return {
        "block": block,
        "layers": tuple(layers),
        "depth": _DEPTHS.get((block, tuple(layers))),
        "conv1_t_size": int(conv1.shape[2]),
        "width": int(conv1.shape[0]),
        "num_classes": None if fc is None else int(fc.shape[0]),
    }


def read_3d_resnets_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a 3D-ResNets-PyTorch checkpoint with ``weights_only=True`` and convert its keys.

    The repository saves ``{"epoch", "arch", "state_dict", "optimizer", "scheduler"}`` (the
    Kinetics-700 releases, e.g. ``r3d18_K_200ep.pth``, ``r3d50_K_200ep.pth``); a bare state dict
    is accepted too. Keys may carry ``module.``.

    Returns:
        ``(state, info)``: the state dict with lowres-har keys, and ``info`` with ``block``,
        ``layers``, ``depth`` (``None`` for an unlisted stage layout), ``conv1_t_size``,
        ``width``, ``num_classes`` and ``arch`` (the checkpoint's string, or ``None``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable with ``weights_only=True``, no state dict, not a ResNet of that
            repository, a shortcut-A checkpoint (no downsample convolutions), or an ``arch``
            that disagrees with the weights.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # pickle errors come in many types
        raise ValueError(
            f"{path}: cannot be read with weights_only=True ({type(err).__name__}: {err})"
        ) from err
    arch = None
    state: Any = obj
    if isinstance(obj, Mapping) and "state_dict" in obj:
        state, arch = obj["state_dict"], obj.get("arch")
    if not (
        isinstance(state, Mapping)
        and state
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items())
    ):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(f"{path}: no state dict found (top-level entries: {keys})")
    try:
        converted = convert_3d_resnets_state_dict(state)
        info = _describe(converted)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    if "layer2.0.downsample.0.weight" not in converted:
        raise ValueError(
            f"{path}: no downsample convolutions (a shortcut-type 'A' checkpoint, e.g. the 2017 "
            "resnet-18/34-kinetics.pth releases); lowres-har implements shortcut 'B' only, as "
            "used by the Kinetics-700 r3d*_K_200ep.pth releases"
        )
    info["arch"] = arch if isinstance(arch, str) else None
    m = re.search(r"(\d+)$", info["arch"] or "")
    if m and info["depth"] is not None and int(m.group(1)) != info["depth"]:
        raise ValueError(
            f"{path}: arch {info['arch']!r} disagrees with the weights (depth {info['depth']})"
        )
    return converted, info


def load_3d_resnets_checkpoint(
    path: str | Path,
    *,
    num_classes: int | None = None,
    input_size: int = 112,
    adapt_strides: bool = True,
    max_pool: bool = True,
    head: str = "avg",
    head_kwargs: Mapping[str, Any] | None = None,
    dropout: float = 0.0,
) -> ResNet3D:
    """Build the AD-ResNet-3D matching a 3D-ResNets-PyTorch checkpoint and load its weights.

    The network gets ``layout="3d-resnets"`` (conv1 ``t×7×7`` with the checkpoint's ``t``, the
    3×3×3 max-pool), the checkpoint's depth, width and classes, and then the requested
    ``input_size`` / ``adapt_strides`` (strides have no weights, so adapted networks load the
    same tensors). Every tensor is loaded strictly (``num_batches_tracked`` is filled in for
    checkpoints saved before PyTorch 0.4.1). With ``num_classes`` different from the
    checkpoint's, ``fc`` is re-initialised afterwards; with ``head`` other than ``"avg"`` the
    checkpoint's ``fc`` is dropped and the head is freshly initialised. Both are logged.

    Args:
        path: e.g. ``r3d18_K_200ep.pth`` (Kinetics-700, 700 classes).
        num_classes: classifier outputs (``None``: the checkpoint's).
        input_size, adapt_strides, head, head_kwargs, dropout: see :class:`ResNet3D`.
        max_pool: whether the checkpoint's network used the max-pool (the repository's
            ``--no_max_pool`` flag; it cannot be read from the weights).

    Returns:
        The model in training mode; ``create_model("ad_resnet3d_<depth>", layout="3d-resnets",
        conv1_t_size=t, width=w, ...)`` builds the same network.
    """
    state, info = read_3d_resnets_checkpoint(path)
    kept_classes = info["num_classes"] or num_classes or 400
    model = ResNet3D(
        info["block"],
        info["layers"],
        kept_classes if head == "avg" else (num_classes or kept_classes),
        input_size=input_size,
        adapt_strides=adapt_strides,
        layout="3d-resnets",
        conv1_t_size=info["conv1_t_size"],
        max_pool=max_pool,
        width=info["width"],
        head=head,
        head_kwargs=head_kwargs,
        dropout=dropout,
    )
    own = model.state_dict()
    for key in own:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    if head != "avg":
        dropped = sorted(k for k in state if k.startswith("fc."))
        for k in dropped:
            del state[k]
        if dropped:
            log.warning("%s: head=%r, dropped the checkpoint's %s", path, head, dropped)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path}: does not fit the network built for it (missing {missing[:5]}, unexpected "
            f"{list(result.unexpected_keys)[:5]})"
        )
    if head == "avg" and (info["num_classes"] is None or "fc.weight" not in state):
        log.warning("%s: no fc in the checkpoint; the classifier is freshly initialised", path)
    if num_classes is not None and model.num_classes != num_classes:
        log.warning(
            "%s: re-initialised the classifier (%d -> %d classes)",
            path,
            model.num_classes,
            num_classes,
        )
        model.reset_classifier(num_classes)
    log.info("%s: loaded %d tensors (3D-ResNets-PyTorch %s)", path, len(state), info["arch"])
    return model


def convert_3d_resnets_checkpoint(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Convert a 3D-ResNets-PyTorch checkpoint into a lowres-har state dict file.

    ``dst`` then loads through ``create_model(name, pretrained=dst, **kwargs)`` (and a recipe's
    ``weights:``) with the returned ``name`` and ``kwargs``.

    Returns:
        ``{"name": "ad_resnet3d_18", "kwargs": {"layout": "3d-resnets", "conv1_t_size": 7,
        "width": 64}, "num_classes": 700}`` (``name`` is ``None`` for depths without a
        registered model).
    """
    state, info = read_3d_resnets_checkpoint(src)
    dst = Path(dst).expanduser()
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, str(dst))
    depth = info["depth"]
    name = f"ad_resnet3d_{depth}" if depth in (18, 34, 50) else None
    kwargs: dict[str, Any] = {"layout": "3d-resnets", "conv1_t_size": info["conv1_t_size"]}
    if info["width"] != 64:
        kwargs["width"] = info["width"]
    return {"name": name, "kwargs": kwargs, "num_classes": info["num_classes"]}


def load_backbone_weights(
    model: nn.Module, state: Mapping[str, Tensor], *, source: str = "state dict"
) -> dict[str, list[str]]:
    """Load ResNet backbone weights into every :class:`ResNet3DBackbone` inside ``model``.

    For the multi-scale and FPN models (and :class:`ResNet3D` itself): ``state`` has
    torchvision / lowres-har ResNet keys (``stem.0.weight``, ``layer1.0.conv1.0.weight``, ...;
    a 3D-ResNets-PyTorch checkpoint after :func:`convert_3d_resnets_state_dict`); ``fc.*`` is
    ignored. A tensor whose shape differs only in its input channels (dimension 1) is skipped:
    those are the first convolutions of stages that also receive a larger scale's lateral
    features in the multi-scale model. Skipped and absent tensors are logged.

    Returns:
        ``{"loaded": [...], "skipped": [...], "missing": [...]}`` with ``model``'s key names.

    Raises:
        ValueError: ``model`` has no ResNet backbone, or a tensor differs in another way than
            the input channels (a different depth, width or stem layout).
    """
    report: dict[str, list[str]] = {"loaded": [], "skipped": [], "missing": []}
    backbones = [(n, m) for n, m in model.named_modules() if isinstance(m, ResNet3DBackbone)]
    if not backbones:
        raise ValueError(f"{type(model).__name__} contains no ResNet3DBackbone")
    for prefix, backbone in backbones:
        pre = f"{prefix}." if prefix else ""
        own = {k: v for k, v in backbone.state_dict().items() if k.startswith(("stem.", "layer"))}
        usable = {}
        for key, value in state.items():
            if key not in own:
                continue
            target = own[key]
            if target.shape == value.shape:
                usable[key] = value
            elif (
                target.ndim == value.ndim >= 2
                and target.shape[0] == value.shape[0]
                and target.shape[2:] == value.shape[2:]
            ):
                report["skipped"].append(pre + key)
            else:
                hint = " (stem layout? try layout='3d-resnets')" if key == "stem.0.weight" else ""
                raise ValueError(
                    f"{source}: {key} has shape {tuple(value.shape)}, the model's {pre}{key} "
                    f"{tuple(target.shape)}{hint}"
                )
        backbone.load_state_dict(usable, strict=False)
        report["loaded"] += [pre + k for k in usable]
        report["missing"] += [pre + k for k in own if k not in state]
    if report["skipped"]:
        log.warning("%s: skipped (lateral inputs): %s", source, ", ".join(report["skipped"]))
    if report["missing"]:
        log.warning("%s: not in the state dict: %s", source, ", ".join(report["missing"]))
    log.info("%s: loaded %d backbone tensors", source, len(report["loaded"]))
    return report


# --------------------------------------------------------------------------------------------
# Registration

#: the thesis (``../shared/seeds/001_45438603c7ea17ce.txt``). The stored text has no title page:
#: title, author and year below are descriptive, not copied (see the model card).
THESIS = Paper(
    title=(
        "Multi-Scale ResNet-3D, FPN and Multi-Scale FPN models for low-resolution action "
        "recognition on TinyVIRAT-v2 (title page not in the stored text)"
    ),
    authors="author not in the stored text",
    venue="Master's thesis",
    year=2021,
)
_SRC = "thesis, Table"
INPUTS = {
    "video": InputSpec(
        3,
        16,
        (112, 112),
        "RGB clip, Kinetics mean/std normalised; any T×H×W runs (input_size only sets strides)",
    )
}


def _result(table: str, metric: str, value: float, setting: str) -> ReportedResult:
    return ReportedResult("TinyVIRAT-v2 test", metric, value, f"{_SRC} {table}", setting)


def _f1_p_r(table: str, f1: float, p: float, r: float, setting: str) -> tuple[ReportedResult, ...]:
    return (
        _result(table, "F1 (%)", f1, setting),
        _result(table, "precision (%)", p, setting),
        _result(table, "recall (%)", r, setting),
    )


_COMMON_CHOICES = {
    "layout": "'torchvision' (default: conv1 3×7×7, no max-pool, 4 spatial stride-2 ops) or "
    "'3d-resnets' (conv1 7×7×7 + 3×3×3 stride-2 max-pool, 5 ops: the thesis' Kinetics-700 "
    "network); conv1_t_size / max_pool override either",
    "adapt_strides": "True: the first n - k of the n spatial stride-2 ops get stride 1, k the "
    "largest number of halvings (ceil) keeping the last map >= 7 (thesis sec. 3.2; 32 -> 8×8, "
    "sizes < 7 rejected); only spatial strides change, temporal strides stay the standard ones",
    "input_size": "112 (the thesis' size); only configures strides, any clip size runs",
    "width": "64 (the standard network); stages width × (1, 2, 4, 8) (× 4 for bottlenecks)",
    "head": "avg (default; torchvision's avgpool + fc names), attention or dfb "
    "(lowres_har.models.heads, under `head`); head_kwargs passes their options",
    "dropout": "0.0; before the classifier(s)",
}

_THESIS_BASELINE = _f1_p_r(
    "4.3", 33.0, 33.6, 37.4, "ResNet18 baseline (standard strides, random clip), 112×112"
)


def _ad_card(name: str, depth: int, results: tuple[ReportedResult, ...]) -> ModelCard:
    return ModelCard(
        name=name,
        summary=f"3D ResNet-{depth} whose spatial strides adapt to small inputs (AD-ResNet-3D).",
        inputs=INPUTS,
        num_classes=400,
        paper=THESIS,
        choices={
            **_COMMON_CHOICES,
            "block": "bottleneck ([3, 4, 6, 3])"
            if depth == 50
            else f"basic ({'[2, 2, 2, 2]' if depth == 18 else '[3, 4, 6, 3]'})",
            "num_classes": "400 (torchvision's Kinetics-400 classifier; TinyVIRAT-v2 has 26)",
        },
        reported_results=results,
        pretrained_format=(
            "torchvision state dicts (r3d_18 Kinetics-400, keys unchanged, default layout); "
            "3D-ResNets-PyTorch checkpoints (e.g. Kinetics-700 r3d18_K_200ep.pth) through "
            "lowres_har.models.resnet3d.load_3d_resnets_checkpoint or "
            "convert_3d_resnets_checkpoint (then layout='3d-resnets')"
        ),
        classifier=("fc", "head.fc", "head"),
        docs="models/ad_resnet3d.md",
    )


_AD18_RESULTS = (
    *_THESIS_BASELINE,
    *_f1_p_r("4.6", 36.5, 36.5, 40.7, "AD-ResNet18, avg pooling, segment sampling, hflip TTA"),
    *_f1_p_r("4.6", 34.3, 33.2, 38.7, "AD-ResNet18, attention pooling (head='attention')"),
    *_f1_p_r("4.8", 36.6, 36.3, 40.3, "AD-ResNet18, FC classifier, augmentation, hflip TTA"),
    *_f1_p_r("4.8", 36.1, 35.0, 40.8, "AD-ResNet18, discriminative filter bank (head='dfb')"),
)


def _ad_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    for forbidden in ("block", "layers"):
        if forbidden in kwargs:
            raise TypeError(f"{forbidden!r} is fixed by the model name; use ResNet3D directly")
    return kwargs


@register_model(_ad_card("ad_resnet3d_18", 18, _AD18_RESULTS))
def ad_resnet3d_18(num_classes: int = 400, **kwargs: Any) -> ResNet3D:
    """AD-ResNet-3D-18 (basic blocks ``[2, 2, 2, 2]``); options of :class:`ResNet3D`."""
    return ResNet3D("basic", (2, 2, 2, 2), num_classes, **_ad_kwargs(kwargs))


@register_model(_ad_card("ad_resnet3d_34", 34, ()))
def ad_resnet3d_34(num_classes: int = 400, **kwargs: Any) -> ResNet3D:
    """AD-ResNet-3D-34 (basic blocks ``[3, 4, 6, 3]``); options of :class:`ResNet3D`."""
    return ResNet3D("basic", (3, 4, 6, 3), num_classes, **_ad_kwargs(kwargs))


@register_model(_ad_card("ad_resnet3d_50", 50, ()))
def ad_resnet3d_50(num_classes: int = 400, **kwargs: Any) -> ResNet3D:
    """AD-ResNet-3D-50 (bottlenecks ``[3, 4, 6, 3]``); options of :class:`ResNet3D`."""
    return ResNet3D("bottleneck", (3, 4, 6, 3), num_classes, **_ad_kwargs(kwargs))
