"""Multi Stream Network (MSN) for extremely low-resolution action recognition (``msn``).

Russo, Ticca, Alati and Pirri (IEEE Access, 2021) process up to three views of the same clip in
separate 3D-convolutional streams: the RGB frames, their TV-L1 optical flow and a "slack" foreground
mask. Each stream has three 5×5×5 convolutions (32, 64, 128 filters) with BatchNorm and ReLU; the
streams' feature maps are fused (sec. III-B, eqs. (1)–(5): concatenation, sum, multi-layer,
interpolation or SSMA), max-pooled and classified by three fully connected hidden layers.

The paper leaves the padding, the pooling between convolutions and the widths of the fully
connected layers open; the values chosen here (and why) are listed in the model card
(:func:`lowres_har.model_card` ``("msn").choices``) and in ``docs/models/msn.md``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from lowres_har.registry import InputSpec, ModelCard, Paper, ReportedResult, register_model

__all__ = [
    "FUSIONS",
    "STREAMS",
    "ConcatFusion",
    "GlobalMaxPool3d",
    "InterpolationFusion",
    "MSN",
    "MULTILAYER_INITS",
    "MSNStream",
    "MultiLayerConcatForm",
    "MultiLayerFusion",
    "SSMAFusion",
    "SumFusion",
    "msn",
]

#: stream name -> (batch key, input channels), in the order ``forward`` takes the tensors.
STREAMS: dict[str, tuple[str, int]] = {
    "rgb": ("video", 3),
    "flow": ("flow", 2),
    "mask": ("mask", 1),
}
#: accepted values of ``fusion``.
FUSIONS: tuple[str, ...] = ("concat", "sum", "multilayer", "interpolation", "ssma")
#: accepted values of ``multilayer_init`` (see :meth:`MultiLayerFusion.init_mix_`).
MULTILAYER_INITS: tuple[str, ...] = ("concat_fan_in", "he")

Triple = tuple[int, int, int]


def _check_multilayer_init(mode: str) -> None:
    if mode not in MULTILAYER_INITS:
        raise ValueError(f"unknown multilayer_init {mode!r}; choose from {list(MULTILAYER_INITS)}")


def _triple(value: int | Sequence[int], what: str) -> Triple:
    out = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(out) != 3 or any(v < 1 for v in out):
        raise ValueError(
            f"{what} must be a positive int or three positive ints (T, H, W), got {value!r}"
        )
    return out


def _he_normal_(weight: Tensor) -> None:
    """He initialisation: zero-mean Gaussian with std ``sqrt(2 / fan_in)`` (paper, sec. IV-C)."""
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


def _init_weights(module: nn.Module) -> None:
    """He-normal weights for every convolution and linear layer, zero biases, unit BatchNorm."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d | nn.Linear):
            _he_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _pool(p: Triple | None) -> nn.Module:
    return nn.Identity() if p is None else nn.MaxPool3d(p, stride=p)


class MSNStream(nn.Module):
    """One MSN branch: ``len(widths)`` blocks of Conv3d → BatchNorm3d → ReLU.

    Block ``i > 0`` starts with the max pooling ``pool_between[i - 1]`` (kernel = stride; ``None``
    skips it). The convolutions have no bias (BatchNorm follows).

    Input ``(B, in_channels, T, H, W)``; :meth:`forward` returns the output of every block, before
    the next block's pooling: ``[(B, widths[i], T_i, H_i, W_i)]``.

    Args:
        in_channels: 3 (RGB), 2 (optical flow) or 1 (mask).
        widths: filters of each convolution (paper: 32, 64, 128).
        kernel_size: convolution kernel ``(t, h, w)`` (paper: 5×5×5).
        padding: convolution padding per axis.
        pool_between: pooling between consecutive convolutions, ``len(widths) - 1`` entries.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        kernel_size: Triple,
        padding: Triple,
        pool_between: Sequence[Triple | None],
    ) -> None:
        super().__init__()
        blocks = []
        cin = in_channels
        for i, cout in enumerate(widths):
            blocks.append(
                nn.Sequential(
                    _pool(pool_between[i - 1]) if i > 0 else nn.Identity(),
                    nn.Conv3d(cin, cout, kernel_size, padding=padding, bias=False),
                    nn.BatchNorm3d(cout),
                    nn.ReLU(inplace=True),
                )
            )
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Per-block feature maps ``[(B, widths[i], T_i, H_i, W_i)]`` of ``x`` ``(B, C, T, H, W)``."""
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out


class _Fusion(nn.Module):
    """Base class: fuses the streams' per-block feature maps.

    ``forward(per_stream)`` takes, for every stream (in ``input_keys`` order), the list of its
    block outputs (:class:`MSNStream`) and returns one map per block: the last entry is the fused
    map ``y`` ``(B, out_channels, T_L, H_L, W_L)`` that the head classifies; earlier entries are
    the per-block maps :meth:`MSN.forward_features` exposes (the streams' maps concatenated along
    channels, unless the fusion itself works per block).
    """

    out_channels: int

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _stages_concat(per_stream: list[list[Tensor]]) -> list[Tensor]:
        n_blocks = len(per_stream[0])
        return [torch.cat([s[i] for s in per_stream], dim=1) for i in range(n_blocks - 1)]


class ConcatFusion(_Fusion):
    """Eq. (1): ``y_cat = F_RGB ⊕ F_OF ⊕ F_M`` (channel concatenation), ``n·C`` channels."""

    def __init__(self, channels: int, num_streams: int) -> None:
        super().__init__()
        self.out_channels = channels * num_streams

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """Per-block concatenations; the last is ``y_cat`` ``(B, n·C, T, H, W)``."""
        last = torch.cat([s[-1] for s in per_stream], dim=1)
        return [*self._stages_concat(per_stream), last]


class SumFusion(_Fusion):
    """Eq. (2): ``y_sum = F_RGB + F_OF + F_M`` (element-wise), ``C`` channels."""

    def __init__(self, channels: int, num_streams: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """Per-block concatenations, then ``y_sum`` ``(B, C, T, H, W)``."""
        last = per_stream[0][-1]
        for s in per_stream[1:]:
            last = last + s[-1]
        return [*self._stages_concat(per_stream), last]


class MultiLayerFusion(_Fusion):
    """Eq. (3): the streams are fused after every convolution block ``i``.

    ``ŷ_i = F_RGB^i + F_OF^i + F_M^i + P_i(y_{i-1})`` and ``y_i = ReLU(w_i * ŷ_i)``, with ``w_i``
    a 1×1×1 convolution ``C_i → C_i`` and ``y_0 = 0`` (so ``ŷ_1`` is the plain sum of eq. (2)).
    ``P_i`` brings ``y_{i-1}`` ``(B, C_{i-1}, T_{i-1}, ...)`` to block ``i``'s shape: the streams'
    own max pooling between the blocks, then a bias-free 1×1×1 projection ``C_{i-1} → C_i`` (the
    paper does not say how the shapes are matched). The streams themselves are not modified:
    the fused path runs beside them. The fused map is ``y_L`` (``C_L`` channels).

    Args:
        widths: channels of each block.
        pool_between: the streams' pooling between blocks (``len(widths) - 1`` entries).
    """

    def __init__(self, widths: Sequence[int], pool_between: Sequence[Triple | None]) -> None:
        super().__init__()
        self.out_channels = int(widths[-1])
        self.mix = nn.ModuleList(nn.Conv3d(c, c, 1) for c in widths)
        self.project = nn.ModuleList(
            nn.Sequential(_pool(p), nn.Conv3d(cin, cout, 1, bias=False))
            for p, cin, cout in zip(pool_between, widths[:-1], widths[1:], strict=True)
        )
        self.act = nn.ReLU()

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """``[y_1, ..., y_L]``, ``y_i`` ``(B, C_i, T_i, H_i, W_i)``."""
        out: list[Tensor] = []
        for i, mix in enumerate(self.mix):
            y_hat = per_stream[0][i]
            for s in per_stream[1:]:
                y_hat = y_hat + s[i]
            if i > 0:
                y_hat = y_hat + self.project[i - 1](out[-1])
            out.append(self.act(mix(y_hat)))
        return out

    def init_mix_(self, num_streams: int, mode: str = "concat_fan_in") -> None:
        """Set the He fan-in of the mixing convolutions ``w_i`` drawn by MSN's initialisation.

        ``w_i * (F_1 + ... + F_n + P_i(y))`` is a convolution over ``k`` summed maps (``k = n`` in
        block 1, ``n + 1`` after it). ``"concat_fan_in"`` gives ``w_i`` the std
        ``sqrt(2 / (k · C_i))``: He's rule for the fan-in of the equivalent convolution over the
        concatenated maps (:meth:`concat_form`), which keeps ``y_i`` at the scale of one stream's
        output. ``"he"`` keeps the fan-in ``C_i`` of ``w_i`` alone; the sum's scale then compounds
        through the blocks (with three streams the fused map starts about 4× larger than a
        stream's output and the initial logits about 4× larger than the ``sum`` fusion's).

        Expects ``w_i`` drawn He-normal over ``C_i`` (as :class:`MSN` does) and rescales it, so
        no random numbers are drawn and the rest of the initialisation does not depend on
        ``mode``.
        """
        _check_multilayer_init(mode)
        if mode == "he":
            return
        with torch.no_grad():
            for i, mix in enumerate(cast(list[nn.Conv3d], list(self.mix))):
                mix.weight.mul_(1.0 / math.sqrt(num_streams + (1 if i > 0 else 0)))

    def concat_form(self, num_streams: int) -> MultiLayerConcatForm:
        """The same function as one convolution per block over concatenated channels.

        ``w_i * (F_1 + ... + F_n + P_i(y))`` is linear in every term, so it equals a 1×1×1
        convolution of ``F_1 ⊕ ... ⊕ F_n ⊕ pool(y)`` whose weight is ``[w_i, ..., w_i,
        w_i · p_i]`` (``p_i`` the bias-free projection) and whose bias is ``w_i``'s. For integer
        inference: the sum ``ŷ_i`` is never materialised, so its heavy-tailed range is never
        rounded to int8 (the Edge TPU export uses this form).
        """
        return MultiLayerConcatForm(self, num_streams)


class MultiLayerConcatForm(_Fusion):
    """:meth:`MultiLayerFusion.concat_form`: eq. (3) as ``y_i = ReLU(m_i * (F^i_1 ⊕ ... ⊕ F^i_n
    ⊕ pool(y_{i-1})))``, a copy of the fusion's weights; outputs equal within float rounding."""

    def __init__(self, fusion: MultiLayerFusion, num_streams: int) -> None:
        super().__init__()
        self.out_channels = fusion.out_channels
        projections = [cast(nn.Sequential, p) for p in fusion.project]
        self.pools = nn.ModuleList(copy.deepcopy(p[0]) for p in projections)
        self.mix = nn.ModuleList()
        with torch.no_grad():
            for i, mix in enumerate(cast(list[nn.Conv3d], list(fusion.mix))):
                w = mix.weight.detach()  # (C_i, C_i, 1, 1, 1)
                parts = [w] * num_streams
                if i > 0:
                    proj = cast(nn.Conv3d, projections[i - 1][1]).weight.detach()
                    composed = w.flatten(1) @ proj.flatten(1)  # (C_i, C_{i-1})
                    parts.append(composed[:, :, None, None, None])
                weight = torch.cat(parts, dim=1)
                conv = nn.Conv3d(weight.shape[1], weight.shape[0], 1)
                conv.weight.copy_(weight)
                assert mix.bias is not None and conv.bias is not None
                conv.bias.copy_(mix.bias.detach())
                self.mix.append(conv)
        self.act = nn.ReLU()

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """``[y_1, ..., y_L]`` as :class:`MultiLayerFusion` computes them."""
        out: list[Tensor] = []
        for i, mix in enumerate(self.mix):
            parts = [s[i] for s in per_stream]
            if i > 0:
                parts.append(self.pools[i - 1](out[-1]))
            out.append(self.act(mix(torch.cat(parts, dim=1))))
        return out


class InterpolationFusion(_Fusion):
    """Eq. (4): gated sum ``y = Σ_a w_a ⊙ F_a`` with ``w_a = σ(((y_cat * κ_I) ⊕ F_a) * κ_s^a)``.

    ``κ_I`` (shared by all streams) maps ``y_cat`` ``(B, n·C, ...)`` to ``C`` channels; it is
    concatenated with ``F_a`` and the stream-specific ``κ_s^a`` maps the ``2C`` channels to the
    gate ``w_a`` of ``F_a``'s shape. Both are convolutions with bias of kernel ``kernel_size``
    ("same" padding). ``C`` output channels.

    Args:
        channels: ``C``, channels of each stream's last map.
        num_streams: ``n``.
        kernel_size: kernel of ``κ_I`` and ``κ_s^a`` (odd; the paper does not give it).
    """

    def __init__(self, channels: int, num_streams: int, kernel_size: int = 1) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"fusion_kernel must be a positive odd int, got {kernel_size}")
        pad = kernel_size // 2
        self.out_channels = channels
        self.kappa_i = nn.Conv3d(channels * num_streams, channels, kernel_size, padding=pad)
        self.kappa_s = nn.ModuleList(
            nn.Conv3d(2 * channels, channels, kernel_size, padding=pad) for _ in range(num_streams)
        )

    def gates(self, maps: list[Tensor]) -> list[Tensor]:
        """The gates ``w_a`` in (0, 1), one per stream, each of the shape of ``maps[a]``."""
        shared = self.kappa_i(torch.cat(maps, dim=1))
        return [
            torch.sigmoid(k(torch.cat([shared, f], dim=1)))
            for k, f in zip(self.kappa_s, maps, strict=True)
        ]

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """Per-block concatenations, then ``y_inter`` ``(B, C, T, H, W)``."""
        maps = [s[-1] for s in per_stream]
        weighted = [w * f for w, f in zip(self.gates(maps), maps, strict=True)]
        last = weighted[0]
        for t in weighted[1:]:
            last = last + t
        return [*self._stages_concat(per_stream), last]


class SSMAFusion(_Fusion):
    """Eq. (5), the paper's reduced SSMA block: ``y = y_cat ⊙ σ(y_cat * w_k)``, ``n·C`` channels.

    With ``reduction == 1`` (the paper) ``w_k`` is one 1×1×1 convolution ``n·C → n·C``; with
    ``reduction = r > 1`` it is the bottleneck of the original SSMA (Valada et al., IJCV 2019):
    1×1×1 ``n·C → n·C / r``, ReLU, 1×1×1 ``n·C / r → n·C``.
    """

    def __init__(self, channels: int, num_streams: int, reduction: int = 1) -> None:
        super().__init__()
        cat = channels * num_streams
        if reduction < 1 or cat // reduction < 1:
            raise ValueError(f"reduction must be in [1, {cat}], got {reduction}")
        self.out_channels = cat
        self.gate: nn.Module
        if reduction == 1:
            self.gate = nn.Conv3d(cat, cat, 1)
        else:
            mid = cat // reduction
            self.gate = nn.Sequential(
                nn.Conv3d(cat, mid, 1), nn.ReLU(inplace=True), nn.Conv3d(mid, cat, 1)
            )

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """Per-block concatenations, then ``y_ssma`` ``(B, n·C, T, H, W)``."""
        y_cat = torch.cat([s[-1] for s in per_stream], dim=1)
        return [*self._stages_concat(per_stream), y_cat * torch.sigmoid(self.gate(y_cat))]


class _SingleStream(_Fusion):
    """One stream: every fusion reduces to the identity (no fusion parameters)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_channels = channels

    def forward(self, per_stream: list[list[Tensor]]) -> list[Tensor]:
        """The stream's own block outputs."""
        return list(per_stream[0])


class GlobalMaxPool3d(nn.Module):
    """Maximum over ``(T, H, W)``: ``(B, C, T, H, W)`` → ``(B, C, 1, 1, 1)``.

    Written with ``amax`` (ONNX ``ReduceMax``) rather than ``AdaptiveMaxPool3d``, which the
    ONNX exporters do not all support.
    """

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, T, H, W)`` → ``(B, C, 1, 1, 1)``."""
        return x.amax(dim=(2, 3, 4), keepdim=True)


def _canonical_streams(streams: str | Sequence[str]) -> tuple[str, ...]:
    names = [streams] if isinstance(streams, str) else list(streams)
    unknown = [s for s in names if s not in STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {unknown}; choose from {list(STREAMS)}")
    if not names:
        raise ValueError(f"streams must name at least one of {list(STREAMS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"streams must not repeat a stream, got {names}")
    return tuple(s for s in STREAMS if s in names)


class MSN(nn.Module):
    """Multi Stream Network: per-stream 3D CNNs, feature fusion, max pooling, 3-hidden-layer MLP.

    Inputs (``input_keys``, a subset of ``("video", "flow", "mask")`` in this order, chosen by
    ``streams``): ``video`` ``(B, 3, T, H, W)`` RGB, ``flow`` ``(B, 2, T, H, W)`` optical flow
    ``(dx, dy)``, ``mask`` ``(B, 1, T, H, W)`` slack mask; all normalised floats of the same
    ``T × H × W``. Output: logits ``(B, num_classes)``.

    Shapes with the defaults (``num_frames=32``, ``input_size=(32, 32)``, 5×5×5 "same"
    convolutions, 2×2×2 pooling between them): block outputs ``(B, 32, 32, 32, 32)``,
    ``(B, 64, 16, 16, 16)``, ``(B, 128, 8, 8, 8)`` per stream; fused map ``(B, C_f, 8, 8, 8)``
    with ``C_f = 384`` for ``concat``/``ssma`` and 128 otherwise; global 3D max pooling →
    ``(B, C_f)``; ``fc_widths`` hidden layers (ReLU, dropout on all but the last) → ``fc``.

    With the default global pooling any clip size the convolutions accept works. With
    ``fusion_pool=(t, h, w)`` the head max-pools the fused map by ``(t, h, w)`` and flattens it
    (the layout kept); the flattened width is derived from ``num_frames`` × ``input_size`` when
    the model is built, so clips must then have exactly that size (checked, clear error).

    Args:
        num_classes: classifier outputs.
        fusion: one of :data:`FUSIONS` (eqs. (1)–(5)); ignored with a single stream.
        streams: any non-empty subset of ``("rgb", "flow", "mask")``.
        kernel_size: convolution kernel, an int or ``(t, h, w)``.
        widths: filters per convolution block.
        padding: ``"same"`` (odd kernels), ``"valid"`` or an int per axis.
        pool_between: max pooling between consecutive blocks (``len(widths) - 1`` entries, each
            ``(t, h, w)`` or ``None``).
        fusion_pool: ``None`` (default): global max pooling of the fused map (any clip size);
            ``(t, h, w)``: max pooling by that kernel (= stride) and flatten, for clips of
            ``num_frames`` × ``input_size`` only.
        fc_widths: widths of the hidden fully connected layers (the paper has three).
        dropout: dropout after every hidden layer but the last (paper: 0.5 on the first two).
        num_frames: ``T`` the head is built for (paper: ``K = 32``).
        input_size: ``(H, W)`` the head is built for (paper: 32×32).
        fusion_kernel: kernel of the ``interpolation`` convolutions ``κ_I``, ``κ_s``.
        reduction: bottleneck of the ``ssma`` gate (1: the paper's single 1×1×1 convolution).
        multilayer_init: fan-in of the He initialisation of the ``multilayer`` mixing
            convolutions: ``"concat_fan_in"`` (default) the summed maps' channels together,
            ``"he"`` one map's (see :meth:`MultiLayerFusion.init_mix_`).
    """

    input_keys: tuple[str, ...]

    def __init__(
        self,
        num_classes: int = 51,
        fusion: str = "sum",
        streams: str | Sequence[str] = ("rgb", "flow", "mask"),
        kernel_size: int | Sequence[int] = 5,
        widths: Sequence[int] = (32, 64, 128),
        padding: str | int = "same",
        pool_between: Sequence[Sequence[int] | None] = ((2, 2, 2), (2, 2, 2)),
        fusion_pool: Sequence[int] | None = None,
        fc_widths: Sequence[int] = (256, 256, 256),
        dropout: float = 0.5,
        num_frames: int = 32,
        input_size: Sequence[int] = (32, 32),
        fusion_kernel: int = 1,
        reduction: int = 1,
        multilayer_init: str = "concat_fan_in",
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose from {list(FUSIONS)}")
        self.fusion_name = fusion
        self.stream_names = _canonical_streams(streams)
        self.input_keys = tuple(STREAMS[s][0] for s in self.stream_names)
        widths = [int(w) for w in widths]
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths}")
        if len(pool_between) != len(widths) - 1:
            raise ValueError(
                f"pool_between needs {len(widths) - 1} entries (one between each pair of "
                f"convolutions), got {len(pool_between)}"
            )
        pools = [None if p is None else _triple(p, "pool_between entry") for p in pool_between]
        kernel = _triple(kernel_size, "kernel_size")
        pad = self._padding(padding, kernel)
        if len(fc_widths) < 1 or any(int(w) < 1 for w in fc_widths):
            raise ValueError(
                f"fc_widths must be a non-empty list of positive ints, got {fc_widths}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        size = (int(num_frames), *(int(s) for s in input_size))
        if len(size) != 3 or any(s < 1 for s in size):
            raise ValueError(
                f"num_frames must be >= 1 and input_size two positive ints (H, W), got "
                f"num_frames={num_frames}, input_size={input_size}"
            )
        self.clip_shape: Triple = size

        self.streams = nn.ModuleDict(
            {s: MSNStream(STREAMS[s][1], widths, kernel, pad, pools) for s in self.stream_names}
        )
        n = len(self.stream_names)
        self.fusion: _Fusion
        if n == 1:
            self.fusion = _SingleStream(widths[-1])
        elif fusion == "concat":
            self.fusion = ConcatFusion(widths[-1], n)
        elif fusion == "sum":
            self.fusion = SumFusion(widths[-1], n)
        elif fusion == "multilayer":
            self.fusion = MultiLayerFusion(widths, pools)
        elif fusion == "interpolation":
            self.fusion = InterpolationFusion(widths[-1], n, fusion_kernel)
        else:
            self.fusion = SSMAFusion(widths[-1], n, reduction)

        fused = self._fused_size(size, kernel, pad, pools)
        self.fused_shape: Triple = fused
        self.fixed_size = fusion_pool is not None
        self.pool: nn.Module
        if fusion_pool is None:
            grid: Triple = (1, 1, 1)
            self.pool = GlobalMaxPool3d()
        else:
            fp = _triple(fusion_pool, "fusion_pool")
            grid = tuple(f // p for f, p in zip(fused, fp, strict=True))  # type: ignore[assignment]
            if min(grid) < 1:
                raise ValueError(
                    f"fusion_pool {fp} is larger than the fused map {fused} "
                    f"(T×H×W for a {size} clip); use a smaller pooling or fusion_pool=None"
                )
            self.pool = nn.MaxPool3d(fp, stride=fp)
        self.head_grid: Triple = grid
        hidden: list[nn.Module] = []
        cin = self.fusion.out_channels * math.prod(grid)
        for i, w in enumerate(fc_widths):
            hidden += [nn.Linear(cin, int(w)), nn.ReLU(inplace=True)]
            if i < len(fc_widths) - 1 and dropout > 0:
                hidden.append(nn.Dropout(dropout))
            cin = int(w)
        self.mlp = nn.Sequential(*hidden)
        self.fc = nn.Linear(cin, num_classes)
        _init_weights(self)
        if isinstance(self.fusion, MultiLayerFusion):
            self.fusion.init_mix_(n, multilayer_init)
        else:
            _check_multilayer_init(multilayer_init)

    @staticmethod
    def _padding(padding: str | int, kernel: Triple) -> Triple:
        if padding == "same":
            if any(k % 2 == 0 for k in kernel):
                raise ValueError(f'padding="same" needs an odd kernel_size, got {kernel}')
            return (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
        if padding == "valid":
            return (0, 0, 0)
        if isinstance(padding, int) and padding >= 0:
            return (padding, padding, padding)
        raise ValueError(f'padding must be "same", "valid" or an int >= 0, got {padding!r}')

    @staticmethod
    def _fused_size(
        size: Triple, kernel: Triple, pad: Triple, pools: Sequence[Triple | None]
    ) -> Triple:
        """``(T, H, W)`` of the last block's output for a clip of ``size``; errors if it vanishes."""
        dims = list(size)
        for i in range(len(pools) + 1):
            if i > 0 and pools[i - 1] is not None:
                dims = [d // p for d, p in zip(dims, pools[i - 1], strict=True)]  # type: ignore[arg-type]
            dims = [d + 2 * p - k + 1 for d, p, k in zip(dims, pad, kernel, strict=True)]
            if min(dims) < 1:
                raise ValueError(
                    f"a T×H×W = {size} clip is too small for convolution block {i + 1} "
                    f"(kernel {kernel}, padding {pad}, pooling {list(pools)}): pass a larger "
                    'num_frames/input_size, "same" padding or less pooling'
                )
        return (dims[0], dims[1], dims[2])

    @property
    def num_classes(self) -> int:
        """Classifier outputs."""
        return int(self.fc.out_features)

    def _check(self, tensors: tuple[Tensor, ...]) -> None:
        if len(tensors) != len(self.input_keys):
            raise ValueError(
                f"MSN with streams {list(self.stream_names)} takes {len(self.input_keys)} tensors "
                f"{self.input_keys}, got {len(tensors)}"
            )
        for key, name, x in zip(self.input_keys, self.stream_names, tensors, strict=True):
            channels = STREAMS[name][1]
            if x.dim() != 5 or x.shape[1] != channels:
                raise ValueError(
                    f"MSN input {key!r} must be (B, {channels}, T, H, W), got {tuple(x.shape)}"
                )
        first = tensors[0]
        for key, x in zip(self.input_keys[1:], tensors[1:], strict=True):
            if x.shape[0] != first.shape[0] or x.shape[2:] != first.shape[2:]:
                raise ValueError(
                    f"MSN inputs must share B, T, H, W: {self.input_keys[0]!r} is "
                    f"{tuple(first.shape)}, {key!r} is {tuple(x.shape)}"
                )
        if self.fixed_size and tuple(first.shape[2:]) != self.clip_shape:
            raise ValueError(
                f"this MSN flattens a fusion_pool grid built for T×H×W = {self.clip_shape} "
                f"clips, got {tuple(first.shape[2:])}; build it with num_frames/input_size "
                "matching the clips, or use fusion_pool=None (global pooling)"
            )

    def forward_features(self, *tensors: Tensor) -> list[Tensor]:
        """One map per convolution block, ``[(B, C_i, T_i, H_i, W_i)]``.

        Entries before the last are the streams' block outputs concatenated along channels
        (``multilayer``: the fused maps ``y_i``); the last is the fused map ``y`` of eqs. (1)–(5)
        (``(B, 128, 8, 8, 8)`` or ``(B, 384, 8, 8, 8)`` with the defaults).

        Args:
            *tensors: the inputs named by ``input_keys``, in that order.
        """
        if not torch.jit.is_tracing():  # shapes are constants in a trace; the check would warn
            self._check(tensors)
        per_stream = [
            self.streams[name](x) for name, x in zip(self.stream_names, tensors, strict=True)
        ]
        return self.fusion(per_stream)

    def forward_head(self, features: list[Tensor]) -> Tensor:
        """Logits ``(B, num_classes)``: max pooling, flatten, hidden layers, ``fc`` on ``features[-1]``."""
        return self.fc(self.mlp(self.pool(features[-1]).flatten(1)))

    def forward(self, *tensors: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` for the inputs named by ``input_keys``, in that order."""
        return self.forward_head(self.forward_features(*tensors))

    def int8_form(
        self,
        calibration: Iterable[Sequence[Tensor]] | None = None,
        *,
        channels: float = 0.5,
        tensors: float = 0.5,
    ) -> MSN:
        """A copy computing the same function in a form better suited to integer inference.

        A ``multilayer`` fusion becomes :meth:`MultiLayerFusion.concat_form` (other fusions keep
        theirs). With ``calibration`` clips the copy's activation ranges are also equalised
        (:meth:`equalize_ranges`). The Edge TPU export streams this copy; its outputs equal the
        original's within float rounding.

        Args:
            calibration: clips, each a sequence of ``(B, C, T, H, W)`` tensors in
                ``input_keys`` order, on which :meth:`equalize_ranges` measures the ranges;
                ``None``: no equalisation.
            channels, tensors: :meth:`equalize_ranges`'s exponents.
        """
        twin = copy.deepcopy(self)
        if isinstance(self.fusion, MultiLayerFusion):
            twin.fusion = self.fusion.concat_form(len(self.stream_names))
        twin.train(self.training)  # the new fusion module starts in training mode
        if calibration is not None:
            twin.equalize_ranges(calibration, channels=channels, tensors=tensors)
        return twin

    @torch.no_grad()
    def equalize_ranges(
        self,
        clips: Iterable[Sequence[Tensor]],
        *,
        channels: float = 0.5,
        tensors: float = 0.5,
    ) -> dict[str, Tensor]:
        """Rescale feature channels so that int8's per-tensor scales suit them all (in place).

        Integer inference rounds every activation tensor on one scale, set by its largest
        channel, and a concatenation rounds all its inputs on the scale of the largest input:
        in MSN-S the RGB stream's maps peak about 5× lower than the mask stream's, so where
        the multilayer fusion concatenates them they keep a fifth of the resolution. ReLU, max
        pooling and concatenation commute with a positive per-channel factor, so a block output
        ``F`` may be replaced by ``a ⊙ F`` (its BatchNorm affine, or its fusion convolution,
        multiplied by ``a``) when every consumer divides its input weights for those channels
        by ``a``: the network's function does not change (up to float rounding).

        With ``m_c`` channel ``c``'s maximum over ``clips``, ``m = max_c m_c`` the tensor's and
        ``M`` the largest of the tensors concatenated with it (``M = m`` for a tensor no
        concatenation joins), ``a_c = (M / m) ** tensors · (m / m_c) ** channels``; channels
        never active (``m_c ≤ 1e-3·m``) keep ``a_c = 1``. Exponent 1 equalises the ranges
        fully; the cost is on the weight side, since a consumer's input weights divided by
        large factors lose precision in turn under its per-output-channel weight scale. The
        defaults (1/2, 1/2) split the spread between the two (chosen on the SynthActions
        validation split, see the deployment guide).

        Covered: every stream block output, the fusion's inputs and the fused map (the head's
        input). Channels entering a sum (``sum``, ``interpolation``) share one factor across
        the streams, so the sum stays a sum; multilayer must be in :meth:`int8_form`'s concat
        form.

        Args:
            clips: calibration clips, each a sequence of ``(B, C, T, H, W)`` tensors in
                ``input_keys`` order.
            channels: exponent in ``[0, 1]`` for the spread between a tensor's channels.
            tensors: exponent in ``[0, 1]`` for the spread between concatenated tensors.

        Returns:
            The factors applied, ``(C,)`` each, by tensor name (``"<stream>.<block>"``,
            ``"fused.<block>"``).
        """
        for what, value in (("channels", channels), ("tensors", tensors)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{what} must be in [0, 1], got {value}")
        fusion = self.fusion
        if isinstance(fusion, MultiLayerFusion):
            raise ValueError("equalize_ranges needs the concat form: call int8_form(calibration)")
        was_training = self.training
        self.eval()
        names = list(self.stream_names)
        blocks = len(cast(MSNStream, self.streams[names[0]]).blocks)
        stream_max: list[list[Tensor]] | None = None
        fused_max: list[Tensor] | None = None
        for clip in clips:
            xs = tuple(clip)
            self._check(xs)
            per_stream = [self.streams[n](x) for n, x in zip(names, xs, strict=True)]
            fused = fusion(per_stream)
            s_max = [[_channel_max(f) for f in maps] for maps in per_stream]
            f_max = [_channel_max(f) for f in fused]
            if stream_max is None or fused_max is None:
                stream_max, fused_max = s_max, f_max
            else:
                stream_max = [
                    [torch.maximum(a, b) for a, b in zip(old, new, strict=True)]
                    for old, new in zip(stream_max, s_max, strict=True)
                ]
                fused_max = [torch.maximum(a, b) for a, b in zip(fused_max, f_max, strict=True)]
        self.train(was_training)
        if stream_max is None or fused_max is None:
            raise ValueError("equalize_ranges: no calibration clips")
        factors: dict[str, Tensor] = {}
        last = blocks - 1
        n = len(names)

        def layer(s: int, i: int, k: int) -> nn.Module:  # k: 1 conv, 2 BatchNorm
            return cast(nn.Sequential, cast(MSNStream, self.streams[names[s]]).blocks[i])[k]

        def bn(s: int, i: int) -> nn.BatchNorm3d:
            return cast(nn.BatchNorm3d, layer(s, i, 2))

        def conv(s: int, i: int) -> nn.Conv3d:
            return cast(nn.Conv3d, layer(s, i, 1))

        head = next(m for m in self.mlp if isinstance(m, nn.Linear))
        grid = math.prod(self.head_grid)
        # stream blocks before the last: consumed by the stream's next convolution (and, in the
        # multilayer concat form, by that block's fusion convolution)
        ml = fusion if isinstance(fusion, MultiLayerConcatForm) else None
        concat_form = ml is not None
        for i in range(last + (1 if concat_form else 0)):
            group = [stream_max[s][i] for s in range(n)]
            if concat_form and i > 0:
                group.append(fused_max[i - 1])  # pool(y_(i-1)) joins the same concatenation
            for s in range(n):
                top = _group_top(group if concat_form else [stream_max[s][i]], concat_form)
                a = _range_factors(stream_max[s][i], top, channels, tensors)
                factors[f"{names[s]}.{i}"] = a
                _scale_out(bn(s, i), a)
                if i < last:
                    _scale_in(conv(s, i + 1), a)
                if ml is not None:
                    _scale_in(cast(nn.Conv3d, ml.mix[i]), a, start=s * a.numel())
        if ml is not None:
            mixes = cast(list[nn.Conv3d], list(ml.mix))
            for i, mix in enumerate(mixes):
                nxt = [stream_max[s][i + 1] for s in range(n)] if i < last else []
                top = _group_top([fused_max[i], *nxt], True)
                a = _range_factors(fused_max[i], top, channels, tensors)
                factors[f"fused.{i}"] = a
                _scale_out(mix, a)
                if i < last:
                    _scale_in(mixes[i + 1], a, start=n * stream_max[0][i + 1].numel())
                else:
                    _scale_in(head, a, repeat=grid)
            return factors
        # the last stream block and the fused map
        if isinstance(fusion, ConcatFusion | SSMAFusion | _SingleStream):
            top = _group_top([stream_max[s][last] for s in range(n)], True)
            parts = [_range_factors(stream_max[s][last], top, channels, tensors) for s in range(n)]
            joint = torch.cat(parts)
            gate = fusion.gate if isinstance(fusion, SSMAFusion) else None
            first_gate = gate if isinstance(gate, nn.Conv3d) else None
            if isinstance(gate, nn.Sequential):
                first_gate = cast(nn.Conv3d, gate[0])
            for s, a in enumerate(parts):
                factors[f"{names[s]}.{last}"] = a
                _scale_out(bn(s, last), a)
            if first_gate is not None:
                _scale_in(first_gate, joint)
            # y = y_cat (concat, single) or y_cat ⊙ σ(gate(y_cat)) (ssma): scaled like y_cat
            factors[f"fused.{last}"] = joint
            _scale_in(head, joint, repeat=grid)
        else:  # sum, interpolation: one factor per channel shared by the streams and the sum
            m = torch.stack([stream_max[s][last] for s in range(n)] + [fused_max[-1]]).amax(0)
            a = _range_factors(m, m.max(), channels, tensors)
            for s in range(n):
                factors[f"{names[s]}.{last}"] = a
                _scale_out(bn(s, last), a)
            if isinstance(fusion, InterpolationFusion):
                width = a.numel()
                for s in range(n):
                    _scale_in(fusion.kappa_i, a, start=s * width)
                    _scale_in(cast(nn.Conv3d, fusion.kappa_s[s]), a, start=width)
            factors[f"fused.{last}"] = a
            _scale_in(head, a, repeat=grid)
        return factors

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` with a freshly He-initialised one of ``num_classes`` outputs."""
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        _he_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)


def _channel_max(x: Tensor) -> Tensor:
    """Per-channel maximum of ``(B, C, ...)``: ``(C,)``."""
    return x.detach().transpose(0, 1).flatten(1).amax(1)


def _group_top(maxima: Sequence[Tensor], joint: bool) -> Tensor:
    """The range the factors aim at: the largest channel maximum of the group (``joint``, a
    concatenation rounded on one scale) or of the first tensor alone."""
    return torch.stack([m.max() for m in maxima]).max() if joint else maxima[0].max()


def _range_factors(m: Tensor, top: Tensor, channels: float, tensors: float) -> Tensor:
    """Factors for a tensor of channel maxima ``m`` ``(C,)`` in a group peaking at ``top``:
    ``(top / max(m)) ** tensors · (max(m) / m_c) ** channels``; 1 where ``m_c`` is (nearly) 0."""
    own = m.max()
    if float(own) <= 0.0:
        return torch.ones_like(m)
    active = m > 1e-3 * own
    a = (top / own) ** tensors * (own / m.clamp_min(1e-12)) ** channels
    return torch.where(active, a, torch.ones_like(m))


def _scale_out(module: nn.Module, a: Tensor) -> None:
    """Multiply a BatchNorm's affine or a convolution's output channels by ``a`` ``(C,)``."""
    if isinstance(module, nn.BatchNorm3d):
        assert module.weight is not None and module.bias is not None
        module.weight.mul_(a)
        module.bias.mul_(a)
    elif isinstance(module, nn.Conv3d):
        module.weight.mul_(a.view(-1, 1, 1, 1, 1))
        if module.bias is not None:
            module.bias.mul_(a)
    else:  # pragma: no cover - the callers pass only these
        raise TypeError(f"cannot scale the outputs of {type(module).__name__}")


def _scale_in(module: nn.Conv3d | nn.Linear, a: Tensor, *, start: int = 0, repeat: int = 1) -> None:
    """Divide input channels ``start ...`` of a convolution or linear layer by ``a`` (each
    factor over ``repeat`` consecutive inputs: a flattened ``(C, grid)`` layout)."""
    a = a.repeat_interleave(repeat)
    shape = (1, -1) + (1,) * (module.weight.dim() - 2)
    module.weight[:, start : start + a.numel()].div_(a.view(shape))


_PAPER = Paper(
    title=(
        "Learning to See Through a Few Pixels: Multi Streams Network for Extreme "
        "Low-Resolution Action Recognition"
    ),
    authors="P. Russo, S. Ticca, E. Alati, F. Pirri",
    venue="IEEE Access, vol. 9, pp. 12019-12026",
    year=2021,
    url="https://doi.org/10.1109/ACCESS.2021.3050514",
)

_SRC = "Russo et al., IEEE Access 2021, sec. V"

_CARD = ModelCard(
    name="msn",
    summary=(
        "Multi Stream Network: RGB, optical-flow and slack-mask 3D-CNN streams (5×5×5 convs, "
        "32/64/128 filters), fused (concat/sum/multilayer/interpolation/ssma), 3 FC layers."
    ),
    inputs={
        "video": InputSpec(3, 32, (32, 32), "RGB clip (eLR 12×16 upsampled to 32×32), normalised"),
        "flow": InputSpec(2, 32, (32, 32), "TV-L1 optical flow (dx, dy) of the same frames"),
        "mask": InputSpec(1, 32, (32, 32), "slack foreground mask of the same frames"),
    },
    num_classes=51,
    paper=_PAPER,
    choices={
        "streams": "rgb, flow, mask (default all three); input_keys follow in the order "
        "video, flow, mask; one stream makes every fusion the identity",
        "fusion": "sum by default (the paper's best); eqs. (1)-(5)",
        "padding": '"same" (padding 2 for 5×5×5): keeps T×H×W, so pooling alone sets the sizes',
        "pool_between": "2×2×2 max pooling after convolutions 1 and 2 (the paper gives none): "
        "5×5×5 convolutions at 32×32×32 would cost about 250 GFLOPs per clip without it",
        "fusion_pool": "global 3D max pooling of the fused map (the paper's 3D max pooling, "
        "size not given): any clip size, exportable (ReduceMax), small head; fusion_pool=(2,2,2) "
        "max-pools and flattens instead (fixed clip size, 2.1-6.2 M more parameters)",
        "fc_widths": "256, 256, 256 hidden units (the paper gives three hidden layers, no "
        "widths), ReLU; dropout 0.5 after the first two",
        "multilayer": "y_0 = 0; y_(i-1) reaches block i's shape by the streams' pooling and a "
        "bias-free 1×1×1 projection; the fused path runs beside the streams",
        "interpolation": "kappa_I and kappa_s are convolutions with bias, kernel fusion_kernel "
        "(default 1×1×1), gates sigmoid, no nonlinearity between them",
        "ssma": "reduction=1: the paper's single 1×1×1 gate; reduction>1 adds SSMA's bottleneck",
        "init": "He normal (std sqrt(2/fan_in)) for every convolution and linear layer, zero "
        "biases, as sec. IV-C; the multilayer mixing convolutions w_i count the fan-in of the "
        "k summed maps (std sqrt(2/(k·C_i)), multilayer_init='concat_fan_in'); 'he' uses C_i",
    },
    reported_results=(
        ReportedResult(
            "HMDB51 split 1",
            "top-1 accuracy (%)",
            34.31,
            _SRC,
            "eLR 12×16 upsampled to 32×32, three streams, sum fusion, K=32 (Table 6 ablation)",
        ),
        ReportedResult(
            "HMDB51 split 1",
            "top-1 accuracy (%)",
            31.11,
            _SRC,
            "two streams (the text does not say which pair), sum fusion (Table 6)",
        ),
        ReportedResult(
            "HMDB51 split 1", "top-1 accuracy (%)", 29.71, _SRC, "RGB stream only (Table 6)"
        ),
        ReportedResult(
            "Mini-Kinetics-200",
            "top-1 accuracy (%)",
            26.31,
            _SRC,
            "eLR 16×12 (W×H), three streams, sum fusion, official validation set (Table 4)",
        ),
        ReportedResult(
            "-",
            "throughput (fps)",
            889.0,
            _SRC,
            "three streams on a Google Edge TPU, 32-frame sequences, without preprocessing "
            "(about 333 fps with it; I3D about 8 fps) (Table 5)",
        ),
    ),
    classifier=("fc",),
    docs="models/msn.md",
)


@register_model(_CARD)
def msn(num_classes: int = 51, **kwargs: Any) -> MSN:
    """Multi Stream Network; ``fusion`` (default ``"sum"``), ``streams`` (all three), see :class:`MSN`."""
    return MSN(num_classes=num_classes, **kwargs)
