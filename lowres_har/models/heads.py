"""Classification heads for 3D CNN feature maps: average pool, attention pool, discriminative filters.

Every head maps a feature map ``(B, C, T, H, W)`` (any ``T, H, W >= 1`` at run time) to logits
``(B, num_classes)``, exposes ``num_classes`` and ``reset_classifier(num_classes)``, and exports to
ONNX. Build one with :func:`make_head`; ``kind`` is one of :data:`HEADS`:

- ``"avg"`` — :class:`AvgPoolHead`: global average pool + dropout + linear (the ResNet baseline).
- ``"attention"`` — :class:`AttentionPoolHead`: the thesis' Attention Pooling Layer (its section
  3.9): multi-head self-attention over the ``T·H·W`` positions, then an average over positions.
- ``"dfb"`` — :class:`DiscriminativeFilterBankHead`: the thesis' spatial-temporal discriminative
  filter bank (its section 3.10, after Martinez et al., ICCV 2019, who extend Wang et al., CVPR
  2018, to video): global branch + local branch + filter bank, the three classifiers summed.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "HEADS",
    "AttentionPoolHead",
    "AvgPoolHead",
    "DiscriminativeFilterBankHead",
    "make_head",
]

HEADS: tuple[str, ...] = ("avg", "attention", "dfb")


def _check_features(x: Tensor, in_channels: int, head: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(B, in_channels, T, H, W)``."""
    if x.ndim != 5 or x.shape[1] != in_channels:
        raise ValueError(
            f"{head} head expects features (B, {in_channels}, T, H, W), got {tuple(x.shape)}"
        )


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_dropout(name: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


class _LinearClassifier(nn.Module):
    """Shared by heads whose only classifier is ``fc = Linear(in_channels, num_classes)``."""

    in_channels: int
    fc: nn.Linear

    @property
    def num_classes(self) -> int:
        """Number of logits the head produces."""
        return self.fc.out_features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` by a freshly initialised ``Linear(C, num_classes)``."""
        _check_positive("num_classes", num_classes)
        self.fc = nn.Linear(self.in_channels, num_classes).to(self.fc.weight.device)


class AvgPoolHead(_LinearClassifier):
    """Global average pool over ``(T, H, W)``, dropout, linear classifier (the ResNet baseline).

    ``x (B, C, T, H, W) → mean over T·H·W (B, C) → dropout → fc (B, num_classes)``.
    Parameters: ``fc.weight (num_classes, C)``, ``fc.bias (num_classes,)``; the same layout as
    torchvision's video ResNets (``avgpool`` + ``fc``).

    Args:
        in_channels: ``C``, channels of the incoming feature map.
        num_classes: number of logits.
        dropout: dropout probability before ``fc`` (0 disables).
    """

    def __init__(self, in_channels: int, num_classes: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("num_classes", num_classes)
        _check_dropout("dropout", dropout)
        self.in_channels = in_channels
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Features ``(B, C, T, H, W)`` → logits ``(B, num_classes)``."""
        _check_features(x, self.in_channels, "avg")
        return self.fc(self.drop(self.avgpool(x).flatten(1)))


class AttentionPoolHead(_LinearClassifier):
    """Attention Pooling Layer: self-attention over spatio-temporal positions, then average + FC.

    The thesis (section 3.9) only says the layer is "a multi head attention layer followed by an
    average pooling layer" replacing the ResNet's average pool. The choices it leaves open, made
    here (each switchable):

    - tokens: the ``N = T·H·W`` positions of the feature map, each a ``C``-vector
      (``(B, C, T, H, W) → (B, N, C)``); queries, keys and values all come from the tokens
      (``nn.MultiheadAttention(C, num_heads)``, ``C / num_heads`` dimensions per head).
    - ``positional="factorised"`` (default): a learnable positional embedding
      ``e[t, h, w] = e_t[t] + e_h[h] + e_w[w]`` (``C`` each) added to the tokens before the
      attention. The three tables are stored for a ``grid=(8, 7, 7)`` map and linearly resized
      (``align_corners=False``) to the run-time ``T, H, W``, so any map size works. They start
      at zero, so a fresh head behaves as one without positions. ``"none"`` gives no positional
      information: the head is then invariant to any permutation of the positions.
    - ``norm=True`` (default): a ``LayerNorm(C)`` on the tokens before the attention (pre-norm,
      as in a transformer block).
    - ``residual=True`` (default): the attention output is added to the (position-embedded)
      tokens, so ``out_proj = 0`` reduces the head exactly to the average-pool head (without
      positions). ``norm=False, residual=False, positional="none"`` is the thesis' bare layer.
    - then the mean over the ``N`` positions ``(B, C)``, dropout, ``fc (B, num_classes)``.

    Cost: the attention matrix is ``(B, num_heads, N, N)``, quadratic in ``N = T·H·W``: fine on
    a ResNet's last map (e.g. ``2×7×7 = 98`` positions), heavy on large FPN levels.
    Parameters: ``4·C² + 4·C`` (attention) ``+ 2·C`` (norm) ``+ C·(8 + 7 + 7)`` (positions)
    ``+ (C + 1)·num_classes`` (``fc``).

    Args:
        in_channels: ``C``; must be divisible by ``num_heads``.
        num_classes: number of logits.
        dropout: dropout probability before ``fc``.
        num_heads: attention heads (default 8).
        attn_dropout: dropout on the attention weights (default 0).
        positional: ``"factorised"`` or ``"none"``.
        grid: ``(T, H, W)`` size the positional tables are stored at (resized when different).
        norm: pre-attention layer norm.
        residual: add the attention output to its input.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        dropout: float = 0.0,
        num_heads: int = 8,
        attn_dropout: float = 0.0,
        positional: str = "factorised",
        grid: tuple[int, int, int] = (8, 7, 7),
        norm: bool = True,
        residual: bool = True,
    ) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("num_classes", num_classes)
        _check_positive("num_heads", num_heads)
        _check_dropout("dropout", dropout)
        _check_dropout("attn_dropout", attn_dropout)
        if in_channels % num_heads:
            raise ValueError(
                f"in_channels ({in_channels}) must be divisible by num_heads ({num_heads})"
            )
        if positional not in ("factorised", "none"):
            raise ValueError(f"positional must be 'factorised' or 'none', got {positional!r}")
        grid = tuple(grid)  # type: ignore[assignment]
        if len(grid) != 3:
            raise ValueError(f"grid must be (T, H, W), got {grid!r}")
        for name, g in zip(("grid T", "grid H", "grid W"), grid, strict=True):
            _check_positive(name, g)
        self.in_channels = in_channels
        self.positional = positional
        self.residual = residual
        if positional == "factorised":
            self.pos_t = nn.Parameter(torch.zeros(in_channels, grid[0]))
            self.pos_h = nn.Parameter(torch.zeros(in_channels, grid[1]))
            self.pos_w = nn.Parameter(torch.zeros(in_channels, grid[2]))
        self.norm = nn.LayerNorm(in_channels) if norm else nn.Identity()
        self.attn = nn.MultiheadAttention(
            in_channels, num_heads, dropout=attn_dropout, batch_first=True
        )
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    @staticmethod
    def _resize(table: Tensor, size: int) -> Tensor:
        """Positional table ``(C, L)`` → ``(C, size)`` by linear interpolation."""
        if table.shape[1] == size:
            return table
        return F.interpolate(table[None], size=size, mode="linear", align_corners=False)[0]

    def position_embedding(self, t: int, h: int, w: int) -> Tensor:
        """The ``(C, t, h, w)`` embedding added to a ``t×h×w`` map (zeros if ``"none"``)."""
        if self.positional == "none":
            return self.fc.weight.new_zeros(self.in_channels, t, h, w)
        e_t = self._resize(self.pos_t, t)[:, :, None, None]
        e_h = self._resize(self.pos_h, h)[:, None, :, None]
        e_w = self._resize(self.pos_w, w)[:, None, None, :]
        return e_t + e_h + e_w

    def forward(self, x: Tensor) -> Tensor:
        """Features ``(B, C, T, H, W)`` → logits ``(B, num_classes)``."""
        _check_features(x, self.in_channels, "attention")
        if self.positional != "none":
            x = x + self.position_embedding(x.shape[2], x.shape[3], x.shape[4])
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        q = self.norm(tokens)
        attended, _ = self.attn(q, q, q, need_weights=False)
        if self.residual:
            attended = attended + tokens
        return self.fc(self.drop(attended.mean(dim=1)))


class DiscriminativeFilterBankHead(nn.Module):
    """Spatial-temporal discriminative filter bank: global + local/filter-bank classifiers, summed.

    After Martinez et al., "Action Recognition with Spatial-Temporal Discriminative Filter Banks"
    (ICCV 2019; the thesis' reference [24], its section 3.10 and Figure 3.10), which carries the
    filter bank of Wang et al. (CVPR 2018) to 3D. With ``K = num_classes``, ``N =
    filters_per_class`` and ``L = local_channels``:

    - **global branch** (the baseline): ``x (B, C, T, H, W) → mean over T·H·W (B, C) → dropout →
      fc (B, K)`` = ``z_avg``.
    - **local feature branch**: the paper runs a second copy of the last ResNet stage on the
      ×2-upsampled stage-4 map; a head only receives the final map, so here the branch is
      ``Conv3d(C, L, 1) + BN + ReLU → trilinear upsample ×(1, upsample, upsample) (T kept) →
      Conv3d(L, L, 3, padding=1) + BN + ReLU``: ``(B, L, T, upsample·H, upsample·W)``.
    - **discriminative filter bank**: ``N·K`` 1×1×1 convolutions (``filter_bank``, channel
      ``k·N + j`` is filter ``j`` of class ``k``) on the local features, then a global max pool
      over ``T, H, W`` → responses ``m (B, N·K)``. Two classifiers read them:
      ``z_max = fc_max(dropout(m)) (B, K)`` (a linear layer over all responses) and
      ``z_xchannel = mean over j of m[:, k·N + j] (B, K)`` (cross-channel average pooling; no
      parameters).
    - logits ``= z_avg + z_max + z_xchannel`` (the thesis sums the three; the papers' extra
      per-branch losses are not used, the summed logits are trained with the task's loss).

    Cost: the local branch's ``3×3×3`` convolution runs on the upsampled map (``upsample²`` times
    the positions); use ``upsample=1`` on large FPN levels.

    Defaults the thesis leaves open: ``filters_per_class=10`` (Wang et al.'s ``k``),
    ``local_channels=min(C, 256)``, ``upsample=2`` (Martinez et al.'s ×2), ``upsample=1`` keeps
    the map size.

    Args:
        in_channels: ``C``.
        num_classes: ``K``.
        dropout: dropout probability before ``fc`` and ``fc_max``.
        filters_per_class: ``N``.
        local_channels: ``L`` (``None``: ``min(C, 256)``).
        upsample: spatial upsampling factor of the local branch (``>= 1``).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        dropout: float = 0.0,
        filters_per_class: int = 10,
        local_channels: int | None = None,
        upsample: int = 2,
    ) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("num_classes", num_classes)
        _check_positive("filters_per_class", filters_per_class)
        _check_positive("upsample", upsample)
        _check_dropout("dropout", dropout)
        if local_channels is None:
            local_channels = min(in_channels, 256)
        _check_positive("local_channels", local_channels)
        self.in_channels = in_channels
        self.local_channels = local_channels
        self.filters_per_class = filters_per_class
        self.upsample = upsample
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)
        self.local_reduce = nn.Sequential(
            nn.Conv3d(in_channels, local_channels, 1, bias=False),
            nn.BatchNorm3d(local_channels),
            nn.ReLU(inplace=True),
        )
        self.local_conv = nn.Sequential(
            nn.Conv3d(local_channels, local_channels, 3, padding=1, bias=False),
            nn.BatchNorm3d(local_channels),
            nn.ReLU(inplace=True),
        )
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self._make_classifiers(num_classes)

    def _make_classifiers(self, num_classes: int) -> None:
        n = self.filters_per_class * num_classes
        self.filter_bank = nn.Conv3d(self.local_channels, n, 1)
        self.fc_max = nn.Linear(n, num_classes)

    @property
    def num_classes(self) -> int:
        """Number of logits the head produces."""
        return self.fc.out_features

    def reset_classifier(self, num_classes: int) -> None:
        """Re-create ``fc``, ``filter_bank`` and ``fc_max`` for ``num_classes`` (fresh weights)."""
        _check_positive("num_classes", num_classes)
        device = self.fc.weight.device
        self.fc = nn.Linear(self.in_channels, num_classes)
        self._make_classifiers(num_classes)
        for m in (self.fc, self.filter_bank, self.fc_max):
            m.to(device)

    def local_features(self, x: Tensor) -> Tensor:
        """Local branch: ``(B, C, T, H, W)`` → ``(B, L, T, upsample·H, upsample·W)``."""
        y = self.local_reduce(x)
        if self.upsample > 1:
            t, h, w = y.shape[2:]
            size = (t, h * self.upsample, w * self.upsample)
            y = F.interpolate(y, size=size, mode="trilinear", align_corners=False)
        return self.local_conv(y)

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_avg, z_max, z_xchannel)``, each ``(B, K)``; their sum is :meth:`forward`."""
        _check_features(x, self.in_channels, "dfb")
        z_avg = self.fc(self.drop(x.mean(dim=(2, 3, 4))))
        responses = self.filter_bank(self.local_features(x)).amax(dim=(2, 3, 4))  # (B, N·K)
        z_max = self.fc_max(self.drop(responses))
        z_xchannel = responses.unflatten(1, (self.num_classes, self.filters_per_class)).mean(2)
        return z_avg, z_max, z_xchannel

    def forward(self, x: Tensor) -> Tensor:
        """Features ``(B, C, T, H, W)`` → logits ``(B, K) = z_avg + z_max + z_xchannel``."""
        z_avg, z_max, z_xchannel = self.branches(x)
        return z_avg + z_max + z_xchannel


_HEAD_CLASSES: dict[str, type[nn.Module]] = {
    "avg": AvgPoolHead,
    "attention": AttentionPoolHead,
    "dfb": DiscriminativeFilterBankHead,
}


def make_head(
    kind: str, in_channels: int, num_classes: int, *, dropout: float = 0.0, **kwargs: Any
) -> nn.Module:
    """A classification head: ``forward(x: (B, C, T, H, W)) -> logits (B, num_classes)``.

    Args:
        kind: one of :data:`HEADS` (``"avg"``, ``"attention"``, ``"dfb"``).
        in_channels: ``C`` of the feature map.
        num_classes: number of logits.
        dropout: dropout probability before the head's linear classifier(s).
        **kwargs: the head's own options (``attention``: ``num_heads``, ``attn_dropout``,
            ``positional``, ``grid``, ``norm``, ``residual``; ``dfb``: ``filters_per_class``,
            ``local_channels``, ``upsample``; ``avg``: none).

    Raises:
        ValueError: unknown ``kind`` (the message lists :data:`HEADS`), an option the head does
            not take (the message lists those it does), or an invalid value.
    """
    if kind not in _HEAD_CLASSES:
        raise ValueError(f"unknown head {kind!r}; choose one of {list(HEADS)}")
    cls = _HEAD_CLASSES[kind]
    accepted = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "dropout"
    ]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"head {kind!r} takes no option(s) {unknown}; its options: {accepted}")
    return cls(in_channels, num_classes, dropout=dropout, **kwargs)
