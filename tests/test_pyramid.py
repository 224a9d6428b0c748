"""Multi-scale ResNet-3D, ResNet-3D FPN and multi-scale FPN: wiring, sizes, heads, weights."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lowres_har
from lowres_har.models.pyramid import FPNResNet3D, MultiScaleResNet3D, resample, resize_clip
from lowres_har.models.resnet3d import load_backbone_weights

MULTI = ("ms_resnet3d_18", "ms_resnet3d_50", "msfpn_resnet3d_18")
SINGLE = ("fpn_resnet3d_18", "fpn_resnet3d_50")


pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(size: int, frames: int = 2, batch: int = 1, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, size, generator=gen)


def _small(name: str, **kwargs: object) -> nn.Module:
    size = {"input_sizes": [16, 32]} if name in MULTI else {"input_size": 32}
    return lowres_har.create_model(name, width=4, **{**size, **kwargs})


# ---------------------------------------------------------------------------------------------
# every variant and head trains


@pytest.mark.parametrize("head", ["avg", "attention", "dfb"])
@pytest.mark.parametrize("name", MULTI + SINGLE)
def test_variants_and_heads_forward_backward(name: str, head: str) -> None:
    torch.manual_seed(0)
    extra = {"head_kwargs": {"num_heads": 2}} if head == "attention" else {}
    model = _small(name, num_classes=5, head=head, dropout=0.1, **extra)
    assert model.input_keys == ("video",) and model.num_classes == 5
    logits = model(_clip(32, batch=2))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    stems = [n for n in grads if n.endswith("stem.0.weight")]
    assert stems and all(grads[n].abs().sum() > 0 for n in stems)  # type: ignore[union-attr]
    model.reset_classifier(3)
    assert model.num_classes == 3 and model(_clip(32)).shape == (1, 3)


# ---------------------------------------------------------------------------------------------
# documented sizes


@pytest.mark.parametrize("name", ["ms_resnet3d_18", "msfpn_resnet3d_18", "ms_resnet3d_50"])
def test_thesis_input_sizes(name: str) -> None:
    model = lowres_har.create_model(name, width=4, input_sizes=[112, 14, 56]).eval()
    assert model.backbone.input_sizes == (14, 56, 112)  # sorted
    scales = model.backbone.scales
    assert [s.map_sizes()[-1] for s in scales] == [7, 7, 7]  # every scale ends at 7×7
    with torch.no_grad():  # the largest scale receives no lateral input: it runs on its own
        assert scales[-1].forward_features(_clip(112, frames=1))[-1].shape[-2:] == (7, 7)
        feats = model.forward_features(_clip(112, frames=1))
        assert model(_clip(112, frames=1)).shape == (1, 26)
    assert feats[-1].shape[-2:] == (7, 7)
    # the smallest scale keeps 14×14 through stages 1-3 (strides 1, 1, 1, 2)
    assert [f.shape[-1] for f in feats] == [14, 14, 14, 7]


@pytest.mark.parametrize("size", [14, 28, 56, 112])
def test_fpn_levels_at_thesis_sizes(size: int) -> None:
    model = lowres_har.create_model("fpn_resnet3d_18", width=4, input_size=size).eval()
    with torch.no_grad():
        levels = model.forward_features(_clip(size, frames=2))
    assert [lv.shape[1] for lv in levels] == [16] * 4  # fpn_channels = 4 × width
    assert levels[-1].shape[-2:] == (7, 7)
    assert [lv.shape[-1] for lv in levels] == list(model.backbone.map_sizes()[1:])


def test_fpn_resnet3d_50_at_112() -> None:
    model = lowres_har.create_model("fpn_resnet3d_50", num_classes=26, input_size=112).eval()
    assert isinstance(model, FPNResNet3D) and model.num_classes == 26
    assert model.fpn_channels == 256
    assert [c.in_channels for c in model.laterals] == [256, 512, 1024, 2048]
    with torch.no_grad():
        levels = model.forward_features(_clip(112, frames=1))
    assert [tuple(lv.shape[-2:]) for lv in levels] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_fpn_at_32x32_keeps_8x8() -> None:
    model = lowres_har.create_model("fpn_resnet3d_18", width=16, input_size=32).eval()
    with torch.no_grad():
        levels = model.forward_features(_clip(32, frames=4))
    assert [tuple(lv.shape[2:]) for lv in levels] == [
        (4, 32, 32),
        (2, 32, 32),
        (1, 16, 16),
        (1, 8, 8),
    ]


# ---------------------------------------------------------------------------------------------
# wiring, recomputed step by step


def test_multiscale_lateral_wiring() -> None:
    torch.manual_seed(1)
    model = lowres_har.create_model("ms_resnet3d_18", width=4, input_sizes=[16, 32]).eval()
    assert isinstance(model, MultiScaleResNet3D)
    small, large = model.backbone.scales
    # the receiving stages take [own, larger] channels; the largest scale is a plain ResNet
    assert small.layer2[0].conv1[0].in_channels == 8 and large.layer2[0].conv1[0].in_channels == 4
    assert small.layer4[0].conv1[0].in_channels == 32 and large.layer4[0].conv1[0].in_channels == 16
    video = _clip(32, frames=4, batch=2)
    with torch.no_grad():
        xs = small.stem(F.avg_pool3d(video, (1, 2, 2))), large.stem(video)
        feats = []
        for j in range(3):
            a, b = small.stages[j](xs[0]), large.stages[j](xs[1])
            pooled = F.avg_pool3d(b, (1, 2, 2)) if b.shape[-1] != a.shape[-1] else b
            xs = torch.cat([a, pooled], 1), b
            feats.append(xs[0])
        a, b = small.stages[3](xs[0]), large.stages[3](xs[1])
        assert a.shape == b.shape  # both 8×8 (16 -> 8, 32 -> 8)
        feats.append(a + b)
        expected = model.head(feats[-1])
        got = model.forward_features(video)
        for g, f in zip(got, feats, strict=True):
            torch.testing.assert_close(g, f)
        torch.testing.assert_close(model(video), expected)


def test_fpn_top_down_wiring_and_combine() -> None:
    torch.manual_seed(2)
    model = lowres_har.create_model("fpn_resnet3d_18", width=4, input_size=32).eval()
    summed = lowres_har.create_model("fpn_resnet3d_18", width=4, input_size=32, combine="sum")
    summed.load_state_dict(model.state_dict())
    summed.eval()
    video = _clip(32, frames=4, batch=2)
    with torch.no_grad():
        c = model.backbone.forward_features(video)
        lat = [conv(x) for conv, x in zip(model.laterals, c, strict=True)]
        p4 = lat[3]
        p3 = lat[2] + F.interpolate(p4, size=lat[2].shape[2:], mode="nearest")
        p2 = lat[1] + F.interpolate(p3, size=lat[1].shape[2:], mode="nearest")
        p1 = lat[0] + F.interpolate(p2, size=lat[0].shape[2:], mode="nearest")
        for got, want in zip(model.forward_features(video), [p1, p2, p3, p4], strict=True):
            torch.testing.assert_close(got, want)
        logits = [head(p) for head, p in zip(model.heads, [p1, p2, p3, p4], strict=True)]
        mean = torch.stack(logits).mean(0)
        torch.testing.assert_close(model(video), mean)
        torch.testing.assert_close(summed(video), 4 * mean)
        assert (logits[0] - logits[3]).abs().max() > 0  # the levels differ


def test_msfpn_laterals_read_the_concatenations() -> None:
    model = lowres_har.create_model("msfpn_resnet3d_18", width=4, input_sizes=[16, 32]).eval()
    assert [c.in_channels for c in model.laterals] == [8, 16, 32, 32]
    with torch.no_grad():
        video = _clip(32, frames=2)
        feats = model.backbone.forward_features(video)
        top = model.laterals[3](feats[3])
        torch.testing.assert_close(model.forward_features(video)[3], top)


def test_smooth_and_head_grid() -> None:
    model = lowres_har.create_model(
        "fpn_resnet3d_18",
        width=4,
        input_size=32,
        smooth=True,
        head="attention",
        head_kwargs={"num_heads": 2},
        head_grid=[1, 4, 4],
    )
    assert model.smooth is not None and len(model.smooth) == 3
    seen: list[tuple[int, ...]] = []
    for head in model.heads:
        head.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[2:])))
    assert model(_clip(32, frames=4)).shape == (1, 26)
    assert seen == [(1, 4, 4), (1, 4, 4), (1, 4, 4), (1, 4, 4)]


# ---------------------------------------------------------------------------------------------
# resizing helpers


def test_resample_and_resize_clip() -> None:
    x = torch.randn(2, 3, 4, 12, 20)
    torch.testing.assert_close(resample(x, (4, 6, 5)), F.avg_pool3d(x, (1, 2, 4)))
    torch.testing.assert_close(resample(x, (3, 7, 9)), F.adaptive_avg_pool3d(x, (3, 7, 9)))
    up = F.interpolate(x, size=(4, 24, 25), mode="trilinear", align_corners=False)
    torch.testing.assert_close(resample(x, (4, 24, 25)), up)
    assert resample(x, (4, 12, 20)) is x
    clip = torch.randn(1, 3, 2, 112, 112)
    torch.testing.assert_close(resize_clip(clip, 14), F.avg_pool3d(clip, (1, 8, 8)))
    assert resize_clip(clip, 32).shape == (1, 3, 2, 32, 32)


# ---------------------------------------------------------------------------------------------
# backbone weights


def test_load_backbone_weights(caplog: pytest.LogCaptureFixture) -> None:
    source = lowres_har.create_model("ad_resnet3d_18", width=4)
    state = source.state_dict()
    ms = lowres_har.create_model("ms_resnet3d_18", width=4, input_sizes=[16, 32])
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        report = load_backbone_weights(ms, state, source="r3d.pth")
    small, large = ms.backbone.scales
    for key, value in large.state_dict().items():  # the largest scale takes every tensor
        torch.testing.assert_close(value, state[key])
    # the smaller scale's lateral-receiving convolutions keep their own (wider) weights
    assert "backbone.scales.0.layer2.0.conv1.0.weight" in report["skipped"]
    assert "backbone.scales.0.layer2.0.downsample.0.weight" in report["skipped"]
    torch.testing.assert_close(small.layer2[0].conv2[0].weight, state["layer2.0.conv2.0.weight"])
    assert "skipped (lateral inputs)" in caplog.text and not report["missing"]
    assert not any(k.endswith(("fc.weight", "fc.bias")) for k in report["loaded"])

    fpn = lowres_har.create_model("fpn_resnet3d_18", width=4, input_size=32)
    report = load_backbone_weights(fpn, state)
    assert not report["skipped"] and len(report["loaded"]) == len(
        [k for k in state if not k.startswith("fc.")]
    )
    torch.testing.assert_close(
        fpn.backbone.layer4[1].conv2[0].weight, state["layer4.1.conv2.0.weight"]
    )
    hara = lowres_har.create_model("fpn_resnet3d_18", width=4, layout="3d-resnets")
    with pytest.raises(ValueError, match=r"stem\.0\.weight .*layout='3d-resnets'"):
        load_backbone_weights(hara, state)
    with pytest.raises(ValueError, match="contains no ResNet3DBackbone"):
        load_backbone_weights(nn.Linear(2, 2), state)


# ---------------------------------------------------------------------------------------------
# errors and cards


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        ("ms_resnet3d_18", {"input_sizes": []}, ValueError, "at least one size"),
        ("ms_resnet3d_18", {"input_sizes": [16, 16]}, ValueError, "must be distinct"),
        ("ms_resnet3d_18", {"input_sizes": [5, 32]}, ValueError, r"ints >= 7 .*got 5"),
        ("ms_resnet3d_18", {"input_sizes": 32}, ValueError, "must be a list of ints"),
        (
            "ms_resnet3d_18",
            {"input_size": 32},
            TypeError,
            r"unexpected model arguments: \['input_size'\]",
        ),
        ("fpn_resnet3d_18", {"input_sizes": [16, 32]}, TypeError, "unexpected model arguments"),
        ("fpn_resnet3d_18", {"input_size": 3}, ValueError, "smaller than the 7×7"),
        ("fpn_resnet3d_18", {"combine": "max"}, ValueError, "unknown combine 'max'"),
        ("fpn_resnet3d_18", {"head_grid": [4, 4]}, ValueError, "head_grid must be three"),
        ("fpn_resnet3d_18", {"fpn_channels": 0}, ValueError, "fpn_channels must be a positive"),
        ("msfpn_resnet3d_18", {"head": "gem"}, ValueError, "unknown head 'gem'"),
        ("ms_resnet3d_50", {"dropout": -0.1}, ValueError, r"dropout must be in \[0, 1\)"),
    ],
)
def test_clear_errors(name: str, kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        lowres_har.create_model(name, width=4, **kwargs)


def test_cards() -> None:
    for name in MULTI + SINGLE:
        card = lowres_har.model_card(name)
        assert card.docs == "models/pyramid_resnet3d.md" and card.num_classes == 26
        assert card.paper is not None and card.choices
        assert card.classifier[-1] == ("heads" if "fpn" in name else "head")
    fpn50 = lowres_har.model_card("fpn_resnet3d_50").reported_results
    best = [r for r in fpn50 if r.source == "thesis, Table 4.12"]
    assert {(r.metric, r.value) for r in best} == {
        ("F1 (%)", 42.2),
        ("precision (%)", 42.6),
        ("recall (%)", 45.7),
    }
