"""Classification heads: shapes, gradients, hand computations, invariances, ONNX parity."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lowres_har.models.heads import (
    HEADS,
    AttentionPoolHead,
    AvgPoolHead,
    DiscriminativeFilterBankHead,
    make_head,
)

for _module in ("onnx", "onnxruntime", "onnxscript"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f'tests/test_heads.py needs {_module}: pip install -e ".[test]"')

C = 16
K = 5
#: small options so every head builds and runs in milliseconds.
OPTIONS: dict[str, dict[str, object]] = {
    "avg": {},
    "attention": {"num_heads": 4},
    "dfb": {"filters_per_class": 3, "local_channels": 8},
}
SIZES = [(1, 1, 1), (2, 3, 5), (4, 7, 7), (3, 2, 1)]


def _head(kind: str, num_classes: int = K, **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return make_head(kind, C, num_classes, **{**OPTIONS[kind], **kwargs})


def _randomise(head: nn.Module) -> nn.Module:
    """Give zero-initialised tables and batch-norm statistics random values."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in head.named_parameters():
            if name.startswith("pos_"):
                p.copy_(torch.randn(p.shape, generator=g))
        for m in head.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return head


@pytest.mark.parametrize("kind", HEADS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_output_shape(kind: str, size: tuple[int, int, int]) -> None:
    head = _head(kind, dropout=0.2)
    for mode in (head.train, head.eval):
        mode()
        out = head(torch.randn(3, C, *size))
        assert out.shape == (3, K)
        assert torch.isfinite(out).all()
    assert head.num_classes == K


@pytest.mark.parametrize("kind", HEADS)
def test_backward_reaches_every_parameter(kind: str) -> None:
    head = _randomise(_head(kind)).train()
    head(torch.randn(2, C, 2, 3, 4)).square().sum().backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", HEADS)
def test_reset_classifier(kind: str) -> None:
    head = _randomise(_head(kind))
    before = {k: v.clone() for k, v in head.state_dict().items()}
    head.reset_classifier(7)
    assert head.num_classes == 7
    assert head.eval()(torch.randn(2, C, 2, 3, 3)).shape == (2, 7)
    after = head.state_dict()
    assert set(after) == set(before)
    changed = {k for k in before if before[k].shape != after[k].shape}
    assert changed, "no classifier tensor changed shape"
    for k in set(before) - changed:  # everything that is not a classifier is kept
        assert torch.equal(before[k], after[k]), k
    with pytest.raises(ValueError, match="num_classes"):
        head.reset_classifier(0)


@pytest.mark.parametrize("kind", HEADS)
def test_samples_do_not_mix(kind: str) -> None:
    """Each sample's logits depend on that sample only (no attention/pooling across the batch)."""
    head = _randomise(_head(kind)).eval()
    x = torch.randn(3, C, 2, 3, 4)
    with torch.no_grad():
        together = head(x)
        alone = torch.cat([head(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_avg_head_is_mean_pool_then_linear() -> None:
    head = _head("avg").eval()
    assert isinstance(head, AvgPoolHead)
    x = torch.randn(2, C, 3, 4, 5)
    w, b = head.fc.weight, head.fc.bias
    expected = torch.empty(2, K)
    for i in range(2):
        pooled = x[i].reshape(C, -1).sum(1) / (3 * 4 * 5)
        for k in range(K):
            expected[i, k] = (w[k] * pooled).sum() + b[k]
    torch.testing.assert_close(head(x), expected, atol=1e-5, rtol=1e-5)
    assert set(head.state_dict()) == {"fc.weight", "fc.bias"}


def _bn(x: Tensor, bn: nn.BatchNorm3d) -> Tensor:
    shape = (1, -1, 1, 1, 1)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return (x - bn.running_mean.view(shape)) * scale.view(shape) + bn.bias.view(shape)


def test_dfb_branches_match_hand_computation() -> None:
    head = _randomise(_head("dfb")).eval()
    assert isinstance(head, DiscriminativeFilterBankHead)
    n = head.filters_per_class
    x = torch.randn(2, C, 2, 3, 4)
    with torch.no_grad():
        z_avg, z_max, z_xchannel = head.branches(x)
        logits = head(x)
        # global branch
        exp_avg = x.mean(dim=(2, 3, 4)) @ head.fc.weight.T + head.fc.bias
        # local branch: 1x1x1 conv + BN + ReLU, x2 spatial upsampling, 3x3x3 conv + BN + ReLU
        w1 = head.local_reduce[0].weight[:, :, 0, 0, 0]  # (L, C)
        y = torch.relu(_bn(torch.einsum("bcthw,lc->blthw", x, w1), head.local_reduce[1]))
        y = F.interpolate(y, size=(2, 6, 8), mode="trilinear", align_corners=False)
        y = torch.relu(_bn(F.conv3d(y, head.local_conv[0].weight, padding=1), head.local_conv[1]))
        assert y.shape == (2, head.local_channels, 2, 6, 8)
        # filter bank: N*K 1x1x1 filters, global max over T, H, W
        wf = head.filter_bank.weight[:, :, 0, 0, 0]
        r = torch.einsum("blthw,fl->bfthw", y, wf) + head.filter_bank.bias.view(1, -1, 1, 1, 1)
        m = r.flatten(2).max(dim=2).values  # (B, N*K)
        exp_max = m @ head.fc_max.weight.T + head.fc_max.bias
        exp_x = torch.stack([m[:, k * n : (k + 1) * n].mean(1) for k in range(K)], dim=1)
    for got, expected in ((z_avg, exp_avg), (z_max, exp_max), (z_xchannel, exp_x)):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, exp_avg + exp_max + exp_x, atol=1e-5, rtol=1e-5)


def test_dfb_without_upsampling_keeps_map_size() -> None:
    head = _head("dfb", upsample=1).eval()
    assert isinstance(head, DiscriminativeFilterBankHead)
    assert head.local_features(torch.randn(1, C, 2, 3, 4)).shape == (1, 8, 2, 3, 4)
    assert make_head("dfb", 512, 26).local_channels == 256  # default min(C, 256)
    assert make_head("dfb", 64, 26).filter_bank.out_channels == 10 * 26  # default N = 10


def test_attention_with_zero_output_projection_is_the_avg_head() -> None:
    attn = _head("attention")
    avg = _head("avg")
    avg.fc.load_state_dict(attn.fc.state_dict())
    with torch.no_grad():
        attn.attn.out_proj.weight.zero_()
        attn.attn.out_proj.bias.zero_()
    x = torch.randn(2, C, 3, 4, 5)
    with torch.no_grad():
        torch.testing.assert_close(attn.eval()(x), avg.eval()(x), atol=1e-5, rtol=1e-5)
        # with position tables, the residual adds the mean embedding before the classifier
        _randomise(attn)
        assert isinstance(attn, AttentionPoolHead)
        shift = attn.position_embedding(3, 4, 5).mean(dim=(1, 2, 3)) @ attn.fc.weight.T
        torch.testing.assert_close(attn(x), avg(x) + shift, atol=1e-5, rtol=1e-5)


def test_attention_without_positions_is_permutation_invariant() -> None:
    head = _randomise(_head("attention", positional="none")).eval()
    x = torch.randn(2, C, 3, 4, 5)
    perm = torch.randperm(3 * 4 * 5, generator=torch.Generator().manual_seed(3))
    shuffled = x.flatten(2)[:, :, perm].reshape(x.shape)
    with torch.no_grad():
        torch.testing.assert_close(head(shuffled), head(x), atol=1e-5, rtol=1e-5)
        # the positional tables make the same head order-aware
        positioned = _randomise(_head("attention")).eval()
        assert (positioned(shuffled) - positioned(x)).abs().max() > 1e-3
        assert (positioned(x.flip(-1)) - positioned(x)).abs().max() > 1e-3


def test_attention_position_tables_resize() -> None:
    head = _randomise(_head("attention", grid=(2, 3, 4)))
    assert isinstance(head, AttentionPoolHead)
    with torch.no_grad():
        at_grid = head.position_embedding(2, 3, 4)
        expected = (
            head.pos_t[:, :, None, None]
            + head.pos_h[:, None, :, None]
            + head.pos_w[:, None, None, :]
        )
        torch.testing.assert_close(at_grid, expected)
        assert head.position_embedding(5, 1, 7).shape == (C, 5, 1, 7)
        # linear resizing keeps a constant table constant
        head.pos_t.fill_(0.5)
        head.pos_h.zero_()
        head.pos_w.zero_()
        torch.testing.assert_close(head.position_embedding(6, 2, 9), torch.full((C, 6, 2, 9), 0.5))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"avg.*attention.*dfb"):
        make_head("transformer", C, K)
    with pytest.raises(ValueError, match="num_heads"):
        make_head("avg", C, K, num_heads=2)
    with pytest.raises(ValueError, match="divisible"):
        make_head("attention", 10, K, num_heads=4)
    with pytest.raises(ValueError, match="positional"):
        make_head("attention", C, K, num_heads=4, positional="sinusoidal")
    with pytest.raises(ValueError, match="filters_per_class"):
        make_head("dfb", C, K, filters_per_class=0)
    with pytest.raises(ValueError, match="dropout"):
        make_head("avg", C, K, dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        make_head("avg", C, 0)
    for kind in HEADS:
        with pytest.raises(ValueError, match=r"\(B, 16, T, H, W\)"):
            _head(kind)(torch.randn(2, C + 1, 2, 2, 2))
        with pytest.raises(ValueError, match=r"\(B, 16, T, H, W\)"):
            _head(kind)(torch.randn(2, C, 2, 2))


# torch.export's own use of a deprecated pytree API (torch 2.9+), not ours to fix
@pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\):FutureWarning")
@pytest.mark.parametrize("kind", HEADS)
def test_onnx_export_matches_onnxruntime(kind: str) -> None:
    import onnxruntime as ort

    head = _randomise(_head(kind)).eval()
    size = (2, 3, 5)  # differs from the attention head's position grid: exercises resizing
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        head,
        (torch.randn(2, C, *size),),
        None,
        dynamo=True,
        input_names=["features"],
        output_names=["logits"],
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    assert program is not None
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for b in (1, 3):
        x = torch.randn(b, C, *size)
        with torch.no_grad():
            expected = head(x).numpy()
        got = session.run(None, {"features": x.numpy()})[0]
        assert got.shape == (b, K)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
