"""Classification losses on logits: cross-entropy, binary cross-entropy and the asymmetric loss.

:func:`build_loss` makes one by name (:data:`LOSSES`):

- ``"ce"`` — ``nn.CrossEntropyLoss`` (single-label; class indices ``(B,)``).
- ``"bce"`` — :class:`BinaryCrossEntropyLoss`, ``F.binary_cross_entropy_with_logits`` on multi-hot
  targets ``(B, K)``, or on class indices ``(B,)`` (one-hot encoded first).
- ``"asl"`` — :class:`AsymmetricLoss` (Ridnik et al., ICCV 2021), the multi-label loss of the
  thesis' section 3.11.2; same targets as ``"bce"``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LOSSES", "AsymmetricLoss", "BinaryCrossEntropyLoss", "build_loss"]

LOSSES: tuple[str, ...] = ("ce", "bce", "asl")
_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(_REDUCTIONS)}, got {reduction!r}")


def _multi_hot(logits: Tensor, target: Tensor, loss: str) -> Tensor:
    """Check ``logits (B, K)`` against ``target`` and return float multi-hot targets ``(B, K)``.

    ``target`` is either ``(B, K)`` with values in ``[0, 1]`` (multi-hot or soft labels) or
    integer class indices ``(B,)`` in ``[0, K)``, which are one-hot encoded.
    """
    if logits.ndim != 2:
        raise ValueError(f"{loss}: logits must be (B, K), got {tuple(logits.shape)}")
    k = logits.shape[1]
    if target.ndim == 1 and not target.is_floating_point():
        if target.shape[0] != logits.shape[0]:
            raise ValueError(
                f"{loss}: {target.shape[0]} class indices for {logits.shape[0]} logit rows"
            )
        if target.numel() and (int(target.min()) < 0 or int(target.max()) >= k):
            raise ValueError(f"{loss}: class indices must be in [0, {k}), got {target.tolist()}")
        return F.one_hot(target.long(), k).to(logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(
            f"{loss}: target must be (B, K) = {tuple(logits.shape)} or class indices (B,), "
            f"got {tuple(target.shape)}"
        )
    target = target.to(logits.dtype)
    if target.numel() and not bool(((target >= 0) & (target <= 1)).all()):
        raise ValueError(f"{loss}: target values must lie in [0, 1] (multi-hot labels)")
    return target


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class AsymmetricLoss(nn.Module):
    """Asymmetric loss for multi-label classification (Ridnik et al., ICCV 2021).

    For a logit ``z`` with probability ``p = sigmoid(z)`` and label ``y``, with the shifted
    probability ``p_m = max(p - m, 0)`` (margin ``m = clip``), the per-element loss is::

        loss = -( y · (1 - p)^gamma_pos · log(p)  +  (1 - y) · p_m^gamma_neg · log(1 - p_m) )

    Positives are focused softly (``gamma_pos``), negatives harder (``gamma_neg``) and negatives
    with ``p <= clip`` contribute exactly zero. ``gamma_pos = gamma_neg = clip = 0`` is BCE.

    Numerics: ``log(p)`` is ``logsigmoid(z)``, and ``log(1 - p)`` is ``logsigmoid(-z)`` when
    ``clip = 0`` (exact for any finite ``z``); with ``clip > 0``, ``1 - p_m >= clip`` and its
    log is taken after clamping to ``eps``. The focusing bases ``1 - p`` and ``p_m`` are clamped
    to ``>= eps`` before the power, so the gradient stays finite for fractional ``gamma`` at
    saturated logits (the clamp changes the loss by at most ``eps^gamma · |log|``). No NaN or
    infinity for logits of any finite magnitude (tested at ±100).

    Reduction: the reference implementation returns the sum over batch and classes
    (``reduction="sum"``). ``"mean"`` (default) divides that sum by ``B·K``, the number of
    elements, exactly as ``F.binary_cross_entropy_with_logits(reduction="mean")`` does, so the
    scale is comparable to BCE and independent of batch size and class count. ``"none"``
    returns the ``(B, K)`` per-element losses.

    Args:
        gamma_neg: focusing exponent of negatives (``>= 0``; default 4).
        gamma_pos: focusing exponent of positives (``>= 0``; default 1).
        clip: probability margin ``m`` in ``[0, 1)`` shifting the negatives (default 0.05).
        eps: clamp floor for logs and focusing bases (``> 0``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shapes: ``forward(logits (B, K), target (B, K) multi-hot in [0, 1] or (B,) class indices)``
    → scalar (or ``(B, K)`` with ``"none"``).
    """

    def __init__(
        self,
        gamma_neg: float = 4,
        gamma_pos: float = 1,
        clip: float = 0.05,
        eps: float = 1e-8,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        for name, value in (("gamma_neg", gamma_neg), ("gamma_pos", gamma_pos)):
            if not float(value) >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not 0 <= float(clip) < 1:
            raise ValueError(f"clip must be in [0, 1), got {clip!r}")
        if not 0 < float(eps) < 1:
            raise ValueError(f"eps must be in (0, 1), got {eps!r}")
        _check_reduction(reduction)
        self.gamma_neg = float(gamma_neg)
        self.gamma_pos = float(gamma_pos)
        self.clip = float(clip)
        self.eps = float(eps)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return (
            f"gamma_neg={self.gamma_neg}, gamma_pos={self.gamma_pos}, clip={self.clip}, "
            f"eps={self.eps}, reduction={self.reduction!r}"
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The asymmetric loss of ``logits (B, K)`` against ``target`` (see the class doc)."""
        y = _multi_hot(logits, target, "AsymmetricLoss")
        z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        y = y.to(z.dtype)
        p = torch.sigmoid(z)
        log_p = F.logsigmoid(z)
        if self.clip > 0:
            p_m = (p - self.clip).clamp(min=0)
            log_not_p_m = torch.log((1 - p_m).clamp(min=self.eps))
        else:
            p_m = p
            log_not_p_m = F.logsigmoid(-z)
        loss_pos = log_p
        if self.gamma_pos > 0:
            loss_pos = torch.sigmoid(-z).clamp(min=self.eps).pow(self.gamma_pos) * loss_pos
        loss_neg = log_not_p_m
        if self.gamma_neg > 0:
            loss_neg = p_m.clamp(min=self.eps).pow(self.gamma_neg) * loss_neg
        loss = -(y * loss_pos + (1 - y) * loss_neg)
        return _reduce(loss, self.reduction).to(logits.dtype)


class BinaryCrossEntropyLoss(nn.Module):
    """``F.binary_cross_entropy_with_logits`` accepting multi-hot ``(B, K)`` or indices ``(B,)``.

    Args:
        reduction: ``"mean"`` (over all ``B·K`` elements), ``"sum"`` or ``"none"``.
        pos_weight: optional ``(K,)`` weight of the positive term per class.
    """

    pos_weight: Tensor | None

    def __init__(self, reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction
        self.register_buffer(
            "pos_weight", None if pos_weight is None else torch.as_tensor(pos_weight).float()
        )

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """BCE of ``logits (B, K)`` against ``target`` → scalar (``(B, K)`` with ``"none"``)."""
        y = _multi_hot(logits, target, "BinaryCrossEntropyLoss")
        return F.binary_cross_entropy_with_logits(
            logits, y, reduction=self.reduction, pos_weight=self.pos_weight
        )


_LOSS_CLASSES: dict[str, type[nn.Module]] = {
    "ce": nn.CrossEntropyLoss,
    "bce": BinaryCrossEntropyLoss,
    "asl": AsymmetricLoss,
}


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """The loss called ``name`` (one of :data:`LOSSES`) built with ``kwargs``.

    ``"ce"`` takes ``nn.CrossEntropyLoss``'s arguments (e.g. ``label_smoothing``), ``"bce"``
    those of :class:`BinaryCrossEntropyLoss`, ``"asl"`` those of :class:`AsymmetricLoss`. Every
    loss is called as ``loss(logits (B, K), target)``.

    Raises:
        ValueError: unknown ``name`` (the message lists :data:`LOSSES`) or an argument the loss
            does not take.
    """
    if name not in _LOSS_CLASSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")
    try:
        return _LOSS_CLASSES[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"loss {name!r}: bad arguments {sorted(kwargs)}: {err}") from err
