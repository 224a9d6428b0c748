"""MSN (Multi Stream Network): shapes, fusion equations (1)-(5), streams, init, export."""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lowres_har
from lowres_har.models.msn import (
    FUSIONS,
    MSN,
    MULTILAYER_INITS,
    ConcatFusion,
    InterpolationFusion,
    MultiLayerFusion,
    SSMAFusion,
    SumFusion,
)

CHANNELS = {"video": 3, "flow": 2, "mask": 1}
# a small network for the tests that do not need the paper's widths
SMALL = {"widths": (4, 6, 8), "fc_widths": (16, 12, 10), "num_frames": 8, "input_size": (16, 16)}


def _clips(model: MSN, batch: int = 2, size: tuple[int, int, int] = (8, 16, 16)) -> list[Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(batch, CHANNELS[k], *size, generator=gen) for k in model.input_keys]


def test_full_default_shape_forward_backward() -> None:
    model = lowres_har.create_model("msn", num_classes=51)
    assert isinstance(model, MSN)
    assert model.fusion_name == "sum" and model.input_keys == ("video", "flow", "mask")
    clips = _clips(model, size=(32, 32, 32))
    assert [tuple(c.shape) for c in clips] == [
        (2, 3, 32, 32, 32),
        (2, 2, 32, 32, 32),
        (2, 1, 32, 32, 32),
    ]
    logits = model(*clips)
    assert logits.shape == (2, 51) and torch.isfinite(logits).all()
    logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad.abs().sum() > 0 for p in model.streams.parameters() if p.grad is not None)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_forward_backward(fusion: str) -> None:
    model = lowres_har.create_model(
        "msn", fusion=fusion, num_classes=51, num_frames=4, input_size=(8, 8)
    )
    logits = model(*_clips(model, size=(4, 8, 8)))  # paper widths, a clip small enough for CI
    assert logits.shape == (2, 51)
    logits.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, f"{fusion}: no gradient reaches {name}"


@pytest.mark.parametrize(
    ("fusion", "fused_channels"),
    [("concat", 24), ("sum", 8), ("multilayer", 8), ("interpolation", 8), ("ssma", 24)],
)
def test_forward_features(fusion: str, fused_channels: int) -> None:
    model = MSN(num_classes=5, fusion=fusion, pool_between=((2, 2, 2), (1, 2, 2)), **SMALL).eval()
    feats = model.forward_features(*_clips(model))
    assert len(feats) == 3
    # multilayer: y_1, y_2, y_3 of eq. (3); else the streams' block outputs side by side, then y
    channels = [4, 6, 8] if fusion == "multilayer" else [12, 18, fused_channels]
    expected = [
        (2, c, *s) for c, s in zip(channels, [(8, 16, 16), (4, 8, 8), (4, 4, 4)], strict=True)
    ]
    assert [tuple(f.shape) for f in feats] == expected
    assert model.fused_shape == (4, 4, 4)
    torch.testing.assert_close(model.forward_head(feats), model(*_clips(model)))


def _per_stream(
    n: int, widths: tuple[int, ...], sizes: list[tuple[int, int, int]]
) -> list[list[Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        [torch.rand(2, c, *s, generator=gen) for c, s in zip(widths, sizes, strict=True)]
        for _ in range(n)
    ]


def test_concat_and_sum_equations() -> None:
    per = _per_stream(3, (4, 5), [(4, 6, 6), (2, 3, 3)])
    a, b, c = (s[-1] for s in per)
    torch.testing.assert_close(ConcatFusion(5, 3)(per)[-1], torch.cat([a, b, c], 1))  # eq. (1)
    torch.testing.assert_close(SumFusion(5, 3)(per)[-1], a + b + c)  # eq. (2)
    # earlier entries: the streams' block outputs side by side
    torch.testing.assert_close(SumFusion(5, 3)(per)[0], torch.cat([s[0] for s in per], 1))


def test_multilayer_equation() -> None:
    widths = (4, 6, 8)
    pools = ((2, 2, 2), None)
    per = _per_stream(3, widths, [(4, 8, 8), (2, 4, 4), (2, 4, 4)])
    fusion = MultiLayerFusion(widths, pools)
    for p in fusion.parameters():  # non-zero biases so that they are checked too
        nn.init.normal_(p, 0.0, 0.3)
    out = fusion(per)
    # eq. (3): y_i = ReLU(w_i * (F_RGB^i + F_OF^i + F_M^i + P_i(y_{i-1}))), y_0 = 0
    y = None
    for i in range(3):
        y_hat = per[0][i] + per[1][i] + per[2][i]
        if y is not None:
            prev = F.max_pool3d(y, 2) if pools[i - 1] else y
            y_hat = y_hat + F.conv3d(prev, fusion.project[i - 1][1].weight)
        y = F.relu(F.conv3d(y_hat, fusion.mix[i].weight, fusion.mix[i].bias))
        torch.testing.assert_close(out[i], y)
    assert out[-1].shape == (2, 8, 2, 4, 4)
    # the concatenated form (one convolution per block, for int8 export) computes the same
    form = fusion.concat_form(3)
    assert [m.in_channels for m in form.mix] == [3 * 4, 3 * 6 + 4, 3 * 8 + 6]
    for got, ref in zip(form(per), out, strict=True):
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fusion", ["multilayer", "sum"])
def test_int8_form_is_the_same_function(fusion: str) -> None:
    torch.manual_seed(0)
    model = lowres_har.create_model("msn", fusion=fusion, num_classes=5, **SMALL).eval()
    twin = model.int8_form()
    assert twin is not model and not any(m.training for m in twin.modules())
    assert type(twin.fusion).__name__ == (
        "MultiLayerConcatForm" if fusion == "multilayer" else type(model.fusion).__name__
    )
    xs = [torch.randn(2, c, 8, 16, 16) for c in CHANNELS.values()]
    with torch.no_grad():
        torch.testing.assert_close(twin(*xs), model(*xs), atol=1e-5, rtol=1e-5)
    assert not torch.equal(model(*xs)[0], model(*xs)[1])  # two inputs, two outputs


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Spread the channels' ranges over a decade, as training does (fresh BN is the identity)."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            c = m.num_features
            m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
            m.running_var.copy_(0.2 + 2 * torch.rand(c, generator=gen))
            m.weight.data.copy_(10 ** (-1 + 1.5 * torch.rand(c, generator=gen)))
            m.bias.data.copy_(torch.rand(c, generator=gen) - 0.3)


@pytest.mark.parametrize("streams", [("rgb", "flow", "mask"), ("rgb",)])
@pytest.mark.parametrize("fusion_pool", [None, (2, 2, 2)])
@pytest.mark.parametrize("fusion", FUSIONS)
def test_equalized_int8_form_is_the_same_function(
    fusion: str, fusion_pool: tuple[int, int, int] | None, streams: tuple[str, ...]
) -> None:
    torch.manual_seed(0)
    model = MSN(5, fusion=fusion, streams=streams, fusion_pool=fusion_pool, **SMALL)
    _randomise_batchnorm(model)
    model.eval()
    calibration = [_clips(model) for _ in range(2)]
    twin = model.int8_form(calibration, channels=1.0, tensors=1.0)
    after = twin.state_dict()
    changed = [
        name
        for name, p in model.state_dict().items()
        if name in after and p.shape == after[name].shape and not torch.equal(p, after[name])
    ]
    assert changed  # the factors were folded into weights
    xs = [x[:1] for x in _clips(model, batch=3)]
    with torch.no_grad():
        ref = model(*xs)
        torch.testing.assert_close(twin(*xs), ref, atol=1e-4 * float(ref.abs().max()), rtol=0)


@pytest.mark.parametrize("fusion", ["multilayer", "concat", "sum"])
def test_equalize_ranges_evens_out_the_channels(fusion: str) -> None:
    torch.manual_seed(0)
    model = MSN(5, fusion=fusion, **SMALL)
    _randomise_batchnorm(model)
    model.eval()
    calibration = [_clips(model)]
    keys = model.stream_names

    def spread(net: MSN) -> list[float]:
        """max / min of the active channels' maxima, per stream block output (``sum``: but
        the last, whose factors the streams share so that their sum stays a sum)."""
        with torch.no_grad():
            per = [net.streams[k](x) for k, x in zip(keys, calibration[0], strict=True)]
        out = []
        for maps in per:
            for f in maps[:-1] if fusion == "sum" else maps:
                m = f.transpose(0, 1).flatten(1).amax(1)
                m = m[m > 1e-3 * m.max()]
                out.append(float(m.max() / m.min()))
        return out

    before = spread(model)
    assert max(before) > 5  # the test model has uneven channels to start with
    full = spread(model.int8_form(calibration, channels=1.0, tensors=1.0))
    assert max(full) < 1 + 1e-4  # every active channel now peaks at the same value
    half = spread(model.int8_form(calibration, channels=0.5, tensors=0.5))
    for b, h in zip(before, half, strict=True):  # strength 1/2: the spread's square root
        assert h == pytest.approx(math.sqrt(b), rel=1e-3)
    if fusion != "sum":  # tensors=1: the concatenated streams' last maps peak together
        twin = model.int8_form(calibration, channels=0.0, tensors=1.0)
        with torch.no_grad():
            peaks = [
                float(twin.streams[k](x)[-1].max())
                for k, x in zip(keys, calibration[0], strict=True)
            ]
        assert max(peaks) / min(peaks) == pytest.approx(1.0, abs=1e-4)
    same = model.int8_form(calibration, channels=0.0, tensors=0.0)
    for p, q in zip(model.parameters(), same.parameters(), strict=False):
        if p.shape == q.shape:
            assert torch.equal(p, q)


def test_equalize_ranges_errors() -> None:
    model = MSN(5, fusion="multilayer", **SMALL).eval()
    with pytest.raises(ValueError, match="concat form"):
        model.equalize_ranges([_clips(model)])
    twin = model.int8_form()
    with pytest.raises(ValueError, match="channels"):
        twin.equalize_ranges([_clips(model)], channels=1.5)
    with pytest.raises(ValueError, match="no calibration clips"):
        twin.equalize_ranges([])
    with pytest.raises(ValueError, match="share B, T, H, W"):
        twin.equalize_ranges([[x[:, :, :4] if i else x for i, x in enumerate(_clips(model))]])


def test_interpolation_equation() -> None:
    per = _per_stream(3, (4, 5), [(4, 6, 6), (2, 3, 3)])
    maps = [s[-1] for s in per]
    fusion = InterpolationFusion(5, 3)
    out = fusion(per)[-1]
    # eq. (4): w_a = sigma(((y_cat * k_I) (+) F_a) * k_s^a), y = sum_a w_a . F_a
    shared = F.conv3d(torch.cat(maps, 1), fusion.kappa_i.weight, fusion.kappa_i.bias)
    expected = torch.zeros_like(maps[0])
    for f, k in zip(maps, fusion.kappa_s, strict=True):
        w = torch.sigmoid(F.conv3d(torch.cat([shared, f], 1), k.weight, k.bias))
        assert w.shape == f.shape and (w > 0).all() and (w < 1).all()
        expected = expected + w * f
    torch.testing.assert_close(out, expected)
    # the gate of one stream depends on the other streams through k_I
    g0 = fusion.gates(maps)[0]
    g0_other = fusion.gates([maps[0], maps[1] * 3.0, maps[2]])[0]
    assert not torch.allclose(g0, g0_other)
    assert InterpolationFusion(5, 3, kernel_size=3)(per)[-1].shape == maps[0].shape


def test_ssma_equation() -> None:
    per = _per_stream(3, (4, 5), [(4, 6, 6), (2, 3, 3)])
    y_cat = torch.cat([s[-1] for s in per], 1)
    fusion = SSMAFusion(5, 3)
    assert isinstance(fusion.gate, nn.Conv3d) and fusion.gate.kernel_size == (1, 1, 1)
    gate = torch.sigmoid(F.conv3d(y_cat, fusion.gate.weight, fusion.gate.bias))
    torch.testing.assert_close(fusion(per)[-1], y_cat * gate)  # eq. (5)
    bottleneck = SSMAFusion(5, 3, reduction=5)
    assert bottleneck.gate[0].out_channels == 3  # type: ignore[index]
    assert bottleneck(per)[-1].shape == y_cat.shape
    with pytest.raises(ValueError, match="reduction"):
        SSMAFusion(5, 3, reduction=0)


@pytest.mark.parametrize(
    ("streams", "keys"),
    [
        (["rgb"], ("video",)),
        ("flow", ("flow",)),
        (["mask", "rgb"], ("video", "mask")),
        (["rgb", "flow"], ("video", "flow")),
        (["flow", "mask"], ("flow", "mask")),
    ],
)
def test_stream_subsets(streams: list[str] | str, keys: tuple[str, ...]) -> None:
    model = lowres_har.create_model("msn", streams=streams, num_classes=4, **SMALL)
    assert model.input_keys == keys
    assert sorted(model.streams) == sorted([streams] if isinstance(streams, str) else streams)
    assert model(*_clips(model)).shape == (2, 4)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_single_stream_fusion_is_identity(fusion: str) -> None:
    model = MSN(num_classes=3, fusion=fusion, streams=["mask"], **SMALL).eval()
    assert list(model.fusion.parameters()) == []
    (clip,) = _clips(model)
    feats = model.forward_features(clip)
    for got, want in zip(feats, model.streams["mask"](clip), strict=True):
        torch.testing.assert_close(got, want)
    assert model.fc.in_features == 10 and model.mlp[0].in_features == 8


@pytest.mark.parametrize("fusion", FUSIONS)
def test_output_depends_on_every_stream(fusion: str) -> None:
    torch.manual_seed(0)
    model = MSN(num_classes=6, fusion=fusion, **SMALL).eval()
    clips = _clips(model)
    with torch.no_grad():
        base = model(*clips)
        for i, key in enumerate(model.input_keys):
            changed = list(clips)
            changed[i] = clips[i] + torch.randn_like(clips[i])
            diff = (model(*changed) - base).abs().max()
            assert diff > 1e-4 * base.abs().max(), f"{fusion}: output ignores {key!r}"


def test_other_clip_lengths_and_sizes() -> None:
    model = MSN(num_classes=7, widths=(4, 6, 8), fc_widths=(8, 8, 8))
    assert model.clip_shape == (32, 32, 32)
    for size in [(16, 32, 32), (8, 12, 16)]:  # K = 16; native eLR 12×16
        assert model(*_clips(model, size=size)).shape == (2, 7)
    k16 = lowres_har.create_model("msn", num_frames=16, num_classes=7, widths=(4, 6, 8))
    feats = k16.forward_features(*_clips(k16, size=(16, 32, 32)))
    assert feats[-1].shape == (2, 8, 4, 8, 8) and k16.fused_shape == (4, 8, 8)


def test_flatten_head() -> None:
    kw = {**SMALL, "num_frames": 16, "input_size": (24, 32)}
    model = MSN(num_classes=5, fusion="concat", fusion_pool=(2, 2, 2), **kw)
    # fused map (24 ch, 4 × 6 × 8) → 2×2×2 max pooling → 24 × 2 × 3 × 4 flattened
    assert model.fused_shape == (4, 6, 8) and model.head_grid == (2, 3, 4)
    assert model.mlp[0].in_features == 24 * 2 * 3 * 4
    assert model(*_clips(model, size=(16, 24, 32))).shape == (2, 5)
    with pytest.raises(ValueError, match=r"built for T×H×W = \(16, 24, 32\)"):
        model(*_clips(model, size=(8, 24, 32)))
    with pytest.raises(ValueError, match="fusion_pool"):
        MSN(fusion_pool=(8, 2, 2), **SMALL)


def test_head_layout() -> None:
    model = MSN(
        num_classes=9,
        fc_widths=(32, 24, 16),
        dropout=0.5,
        **{k: v for k, v in SMALL.items() if k != "fc_widths"},
    )
    linears = [m for m in model.mlp if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [32, 24, 16]
    drops = [i for i, m in enumerate(model.mlp) if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(model.mlp[i].p == 0.5 for i in drops)
    assert drops[-1] < model.mlp.__len__() - 2  # no dropout after the third hidden layer
    assert model.fc.in_features == 16 and model.fc.out_features == 9
    stream = model.streams["rgb"]
    convs = [m for m in stream.modules() if isinstance(m, nn.Conv3d)]
    assert [c.kernel_size for c in convs] == [(5, 5, 5)] * 3
    assert [c.padding for c in convs] == [(2, 2, 2)] * 3
    assert sum(isinstance(m, nn.BatchNorm3d) for m in stream.modules()) == 3
    assert sum(isinstance(m, nn.MaxPool3d) for m in stream.modules()) == 2


def _excess_kurtosis(x: Tensor) -> float:
    z = (x - x.mean()) / x.std()
    return float((z**4).mean() - 3.0)


def test_he_normal_initialisation() -> None:
    torch.manual_seed(0)
    model = lowres_har.create_model("msn", fusion="interpolation", num_classes=51)
    model.reset_classifier(20)
    checked = 0
    for name, m in model.named_modules():
        if not isinstance(m, nn.Conv3d | nn.Linear):
            continue
        w = m.weight.detach()
        fan_in = w[0].numel()
        want = math.sqrt(2.0 / fan_in)
        tol = 5.0 / math.sqrt(2 * w.numel())  # ~5 standard errors of a sample std
        assert abs(float(w.std()) / want - 1) < max(tol, 0.01), name
        assert abs(float(w.mean())) < 5 * want / math.sqrt(w.numel()), name
        if w.numel() >= 100_000:  # Gaussian, not uniform (excess kurtosis 0 vs -1.2)
            assert abs(_excess_kurtosis(w)) < 0.1, name
        if m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0, name
        checked += 1
    assert checked == 3 * 3 + 1 + 3 + 3 + 1  # stream convs, k_I, k_s^a, hidden, fc


def test_multilayer_init_fan_in() -> None:
    """``concat_fan_in`` draws ``w_i`` He-normal over the summed maps' channels (k·C_i), ``he``
    over C_i; nothing else changes, and the fused map then starts at a stream's scale."""
    models = {}
    for mode in MULTILAYER_INITS:
        torch.manual_seed(0)
        models[mode] = MSN(num_classes=12, fusion="multilayer", multilayer_init=mode)
    for i, (cf, he) in enumerate(
        zip(models["concat_fan_in"].fusion.mix, models["he"].fusion.mix, strict=True)
    ):
        terms = 3 + (i > 0)
        for conv, fan_in in ((cf, conv_in(cf) * terms), (he, conv_in(he))):
            w = conv.weight.detach()
            want = math.sqrt(2.0 / fan_in)
            assert abs(float(w.std()) / want - 1) < 5.0 / math.sqrt(2 * w.numel()), (i, fan_in)
            assert torch.count_nonzero(conv.bias) == 0
    rest = {k: v for k, v in models["he"].state_dict().items() if not k.startswith("fusion.mix")}
    for k, v in rest.items():
        assert torch.equal(models["concat_fan_in"].state_dict()[k], v), k
    small = dict(SMALL, widths=(16, 32, 64))
    ratios = {}
    for mode in MULTILAYER_INITS:
        torch.manual_seed(0)
        model = MSN(num_classes=12, fusion="multilayer", multilayer_init=mode, **small).train()
        clips = _clips(model, batch=4)
        with torch.no_grad():
            fused = model.forward_features(*clips)[-1]
            stream = model.streams["rgb"](clips[0])[-1]
        ratios[mode] = float(fused.pow(2).mean().sqrt() / stream.pow(2).mean().sqrt())
    # measured: 2.3 and 11.2 (the sum of three streams alone is ~1.7x one stream)
    assert ratios["concat_fan_in"] < 3.0 and ratios["he"] > 3 * ratios["concat_fan_in"], ratios
    with pytest.raises(ValueError, match="unknown multilayer_init 'xavier'"):
        MSN(fusion="multilayer", multilayer_init="xavier", **SMALL)
    with pytest.raises(ValueError, match="unknown multilayer_init 'xavier'"):
        MSN(fusion="sum", multilayer_init="xavier", **SMALL)


def conv_in(conv: nn.Module) -> int:
    return int(cast(nn.Conv3d, conv).in_channels)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_torch_export(fusion: str) -> None:
    model = MSN(num_classes=5, fusion=fusion, **SMALL).eval()
    clips = tuple(_clips(model))
    program = torch.export.export(model, clips)
    torch.testing.assert_close(program.module()(*clips), model(*clips))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert not any("adaptive" in op for op in ops), ops  # ONNX exporters lack adaptive max pool


def test_bad_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="unknown fusion 'mean'"):
        MSN(fusion="mean")
    with pytest.raises(ValueError, match="unknown stream"):
        MSN(streams=["rgb", "depth"])
    with pytest.raises(ValueError, match="at least one"):
        MSN(streams=[])
    with pytest.raises(ValueError, match="repeat"):
        MSN(streams=["rgb", "rgb"])
    with pytest.raises(ValueError, match="pool_between needs 2"):
        MSN(pool_between=[(2, 2, 2)])
    with pytest.raises(ValueError, match="odd kernel_size"):
        MSN(kernel_size=4)
    with pytest.raises(ValueError, match="too small for convolution block 2"):
        MSN(padding="valid", num_frames=8, input_size=(16, 16))
    model = MSN(num_classes=3, **SMALL)
    clips = _clips(model)
    with pytest.raises(ValueError, match="takes 3 tensors"):
        model(*clips[:2])
    with pytest.raises(ValueError, match=r"'flow' must be \(B, 2, T, H, W\)"):
        model(clips[0], clips[0], clips[2])
    with pytest.raises(ValueError, match="must share B, T, H, W"):
        model(clips[0], clips[1][:, :, :4], clips[2])


def test_model_card_and_docs() -> None:
    card = lowres_har.model_card("msn")
    assert card.input_keys == ("video", "flow", "mask")
    assert [card.inputs[k].shape() for k in card.input_keys] == [
        (3, 32, 32, 32),
        (2, 32, 32, 32),
        (1, 32, 32, 32),
    ]
    assert card.paper is not None and card.paper.year == 2021
    assert "IEEE Access" in card.paper.citation() and "Multi Streams Network" in card.paper.title
    values = {r.value for r in card.reported_results}
    assert {29.71, 31.11, 34.31, 26.31, 889.0} <= values
    assert {"padding", "pool_between", "fusion_pool", "fc_widths", "multilayer"} <= set(
        card.choices
    )
    assert lowres_har.create_model("msn").num_classes == card.num_classes == 51
    doc = Path(__file__).parents[1] / "docs" / card.docs
    text = doc.read_text(encoding="utf-8")
    assert "## Results we measured" in text and "34.31" in text
