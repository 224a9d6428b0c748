"""Losses: the asymmetric loss against its formula by hand, BCE reduction, extremes, build_loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lowres_har.losses import LOSSES, AsymmetricLoss, BinaryCrossEntropyLoss, build_loss


def _asl_by_hand(
    logits: list[list[float]],
    targets: list[list[float]],
    gamma_neg: float,
    gamma_pos: float,
    clip: float,
) -> list[list[float]]:
    """Per-element asymmetric loss with plain Python floats (Ridnik et al., eq. for L+ / L-)."""
    out = []
    for row_z, row_y in zip(logits, targets, strict=True):
        row = []
        for z, y in zip(row_z, row_y, strict=True):
            p = 1.0 / (1.0 + math.exp(-z))
            p_m = max(p - clip, 0.0)
            l_pos = (1.0 - p) ** gamma_pos * math.log(p)
            l_neg = p_m**gamma_neg * math.log(1.0 - p_m)
            row.append(-(y * l_pos + (1.0 - y) * l_neg))
        out.append(row)
    return out


def test_asymmetric_loss_small_example_by_hand() -> None:
    logits = [[2.0, -1.0, -4.0], [0.5, 3.0, -0.2]]
    targets = [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]
    by_hand = _asl_by_hand(logits, targets, gamma_neg=4, gamma_pos=1, clip=0.05)
    # element (0, 2): a negative with p = sigmoid(-4) = 0.018 < clip contributes nothing
    assert by_hand[0][2] == 0.0
    z, y = torch.tensor(logits, dtype=torch.float64), torch.tensor(targets, dtype=torch.float64)
    loss = AsymmetricLoss()  # defaults: gamma_neg=4, gamma_pos=1, clip=0.05
    flat = [v for row in by_hand for v in row]
    torch.testing.assert_close(
        AsymmetricLoss(reduction="none")(z, y), torch.tensor(by_hand, dtype=torch.float64)
    )
    assert loss(z, y).item() == pytest.approx(sum(flat) / 6, rel=1e-10)
    assert AsymmetricLoss(reduction="sum")(z, y).item() == pytest.approx(sum(flat), rel=1e-10)


@pytest.mark.parametrize(
    ("gamma_neg", "gamma_pos", "clip"), [(4, 1, 0.05), (2.5, 0.5, 0.2), (0, 0, 0.1), (3, 2, 0)]
)
def test_asymmetric_loss_random_inputs_by_hand(
    gamma_neg: float, gamma_pos: float, clip: float
) -> None:
    g = torch.Generator().manual_seed(int(10 * gamma_neg + 100 * clip))
    logits = (torch.randn(4, 6, generator=g) * 3).tolist()
    targets = (torch.rand(4, 6, generator=g) < 0.4).float().tolist()
    by_hand = _asl_by_hand(logits, targets, gamma_neg, gamma_pos, clip)
    loss = AsymmetricLoss(gamma_neg, gamma_pos, clip, reduction="sum")
    got = loss(torch.tensor(logits), torch.tensor(targets)).item()
    assert got == pytest.approx(sum(v for row in by_hand for v in row), rel=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_no_focusing_no_clip_is_bce(reduction: str) -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 7, generator=g) * 10  # includes saturated logits
    targets = (torch.rand(5, 7, generator=g) < 0.3).float()
    asl = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0, reduction=reduction)
    expected = F.binary_cross_entropy_with_logits(logits, targets, reduction=reduction)
    torch.testing.assert_close(asl(logits, targets), expected, atol=1e-6, rtol=1e-5)
    bce = build_loss("bce", reduction=reduction)
    torch.testing.assert_close(bce(logits, targets), expected)


def test_clip_zeroes_easy_negatives_only() -> None:
    clip = 0.2
    logits = torch.tensor([[-3.0, -1.5, -1.0, 0.0, 2.0]])  # p = .047 .18 .27 .5 .88
    per_element = AsymmetricLoss(clip=clip, reduction="none")(logits, torch.zeros_like(logits))
    easy = torch.sigmoid(logits) < clip
    assert easy.tolist() == [[True, True, False, False, False]]
    assert (per_element[easy] == 0).all()
    assert (per_element[~easy] > 0).all()
    # positives are never shifted: the same logits as positives all cost something
    assert (AsymmetricLoss(clip=clip, reduction="none")(logits, torch.ones_like(logits)) > 0).all()


@pytest.mark.parametrize(
    "options", [{}, {"gamma_pos": 0.5, "gamma_neg": 0.5}, {"clip": 0}, {"clip": 0, "gamma_pos": 0}]
)
def test_extreme_logits_are_finite(options: dict[str, float]) -> None:
    logits = torch.tensor([[100.0, -100.0, 100.0, -100.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    per_element = AsymmetricLoss(reduction="none", **options)(logits, targets)
    assert torch.isfinite(per_element).all()
    # confident and right: no loss; confident and wrong: a large loss
    assert per_element[0, 0].item() == pytest.approx(0, abs=1e-6)
    assert per_element[0, 3].item() == pytest.approx(0, abs=1e-6)
    assert per_element[0, 1].item() > 10
    # a wrong negative costs -log(1 - p) = 100 unshifted; the margin bounds it by -log(clip)
    clip = options.get("clip", 0.05)
    expected = 100 if clip == 0 else -((1 - clip) ** options.get("gamma_neg", 4)) * math.log(clip)
    assert per_element[0, 2].item() == pytest.approx(expected, rel=1e-4)
    per_element.sum().backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()


def test_bce_wrong_positive_at_minus_100_costs_100() -> None:
    """No eps clamp on log(p): a positive at logit -100 costs 100, as BCE does."""
    loss = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0, reduction="sum")
    assert loss(torch.tensor([[-100.0]]), torch.tensor([[1.0]])).item() == pytest.approx(100)


def test_class_indices_are_one_hot() -> None:
    logits = torch.randn(3, 4)
    labels = torch.tensor([2, 0, 3])
    one_hot = torch.zeros(3, 4)
    one_hot[torch.arange(3), labels] = 1
    for loss in (AsymmetricLoss(), BinaryCrossEntropyLoss()):
        torch.testing.assert_close(loss(logits, labels), loss(logits, one_hot))


def test_half_precision_logits() -> None:
    logits = (torch.randn(2, 5) * 50).to(torch.bfloat16)
    out = AsymmetricLoss()(logits, torch.ones(2, 5))
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out)


def test_bad_arguments() -> None:
    for kwargs in (
        {"gamma_neg": -1},
        {"gamma_pos": float("nan")},
        {"clip": 1.0},
        {"clip": -0.1},
        {"eps": 0},
        {"reduction": "avg"},
    ):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            AsymmetricLoss(**kwargs)  # type: ignore[arg-type]
    loss = AsymmetricLoss()
    with pytest.raises(ValueError, match="target must be"):
        loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss(torch.zeros(2, 3), torch.full((2, 3), 2.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loss(torch.zeros(2, 3), torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\)"):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="logits must be"):
        loss(torch.zeros(2, 3, 1), torch.zeros(2, 3, 1))


def test_build_loss() -> None:
    assert LOSSES == ("ce", "bce", "asl")
    asl = build_loss("asl", gamma_neg=2, clip=0.1)
    assert isinstance(asl, AsymmetricLoss)
    assert (asl.gamma_neg, asl.gamma_pos, asl.clip) == (2.0, 1.0, 0.1)
    assert isinstance(build_loss("bce"), BinaryCrossEntropyLoss)
    ce = build_loss("ce", label_smoothing=0.1)
    assert isinstance(ce, nn.CrossEntropyLoss)
    logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    torch.testing.assert_close(
        ce(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1)
    )
    with pytest.raises(ValueError, match=r"'ce', 'bce', 'asl'"):
        build_loss("focal")
    with pytest.raises(ValueError, match="asl"):
        build_loss("asl", gamma=2)
