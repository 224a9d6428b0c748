"""Streaming rewrite (``lowres_har.export.streaming``): clip parity, 4-D-only graphs, timing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from lowres_har.export.common import example_inputs, load_model
from lowres_har.export.streaming import (
    Signature,
    StreamingError,
    StreamingModel,
    to_streaming,
)

TOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny convolutions: intra-op threads only add contention on the shared 2-core box."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _randomise_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so that folding is exercised."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            mean, var = cast(Tensor, m.running_mean), cast(Tensor, m.running_var)
            with torch.no_grad():
                mean.copy_(torch.randn(n, generator=gen) * 0.3)
                var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.3)
    return model.eval()


class _OpAudit(TorchDispatchMode):
    """Records every ATen op a forward runs and the largest rank of any tensor it touches."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()
        self.max_rank = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten((args, kwargs, out))[0]:
            if isinstance(t, Tensor):
                self.max_rank = max(self.max_rank, t.dim())
        self.ops.add(func.overloadpacket.__name__)
        return out


def _audit_step(sm: StreamingModel, batch: int = 1) -> _OpAudit:
    frames = [torch.randn(batch, *sm.frame_shapes[k]) for k in sm.input_keys]
    audit = _OpAudit()
    with torch.no_grad(), audit:
        outs = sm(*frames, sm.schedule[:1], *sm.init_states(batch))
    assert outs[0].shape == (batch, sm.num_classes)
    assert [tuple(s.shape) for s in outs[1:]] == [(batch, *s[1:]) for s in sm.state_shapes]
    return audit


def _check(
    name: str | nn.Module, kwargs: dict[str, Any], frames: int, size: tuple[int, int], **opts: Any
) -> StreamingModel:
    """Parity of ``run_clip`` with the clip model at batch 2, and a 4-D-only step graph."""
    loaded = load_model(name, **kwargs)
    _randomise_norms(loaded.model)
    sm = to_streaming(loaded, num_frames=frames, size=size, **opts)
    clips = example_inputs(loaded, batch=2, seed=1, num_frames=frames, size=size)
    with torch.no_grad():
        want = loaded.model(*clips)
        got = sm.run_clip(*clips)
    err = (want - got).abs().max().item()
    assert err <= TOL, f"streaming differs from the clip model by {err:.3g}"
    assert want.abs().max().item() > 1e-3  # a real comparison, not zeros against zeros
    assert sm.num_steps == sm.schedule.shape[0] >= frames == sm.num_frames
    assert set(sm.schedule.unique().tolist()) <= {0.0, 1.0}
    audit = _audit_step(sm)
    assert audit.max_rank <= 4
    three_d = {op for op in audit.ops if "3d" in op}
    assert not three_d, f"3D ops in the streaming step: {three_d}"
    assert "convolution" in audit.ops or "conv2d" in audit.ops
    return sm


MSN_SMALL: dict[str, Any] = {
    "kernel_size": 3,
    "widths": [8, 16, 32],
    "fc_widths": [16, 16, 16],
    "num_classes": 5,
}


@pytest.mark.parametrize(
    ("fusion", "extra"),
    [
        ("concat", {}),
        ("sum", {}),
        ("multilayer", {}),
        ("interpolation", {"fusion_kernel": 3}),
        ("ssma", {"reduction": 2}),
    ],
)
def test_msn_fusions_parity(fusion: str, extra: dict[str, Any]) -> None:
    sm = _check("msn", {**MSN_SMALL, "fusion": fusion, **extra}, 8, (16, 16))
    assert sm.input_keys == ("video", "flow", "mask")
    assert sm.frame_shapes == {"video": (3, 16, 16), "flow": (2, 16, 16), "mask": (1, 16, 16)}


@pytest.mark.parametrize("streams", [["rgb"], ["rgb", "mask"]])
def test_msn_stream_subsets_parity(streams: list[str]) -> None:
    sm = _check("msn", {**MSN_SMALL, "fusion": "concat", "streams": streams}, 8, (16, 16))
    assert sm.input_keys == tuple({"rgb": "video", "mask": "mask"}[s] for s in streams)


def test_msn_kernel5_parity_and_fused_taps() -> None:
    kwargs = {**MSN_SMALL, "kernel_size": 5, "widths": [8, 8, 16], "fusion": "sum"}
    sm = _check("msn", kwargs, 16, (16, 16))
    fused = _check("msn", kwargs, 16, (16, 16), fuse_taps=True)
    assert fused.num_steps == sm.num_steps
    # 5-tap convolutions: one conv2d per tap unless fused
    assert sum("conv 5x5x5" in layer.op for layer in sm.layers) == 9


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18", "c3d_tiny"])
def test_video_resnets_parity(name: str) -> None:
    sm = _check(name, {"width": 8, "num_classes": 5}, 8, (32, 32))
    if name != "mc3_18":  # temporally strided stages: the last stream has stride 8
        strides = {layer.output.stride for layer in sm.layers if layer.output is not None}
        assert max(strides) == (4 if name == "c3d_tiny" else 8)


class _Strided(nn.Module):
    """Temporal stride 2 with a strided 1×1×1 shortcut, a dilated conv, a temporal max pool."""

    input_keys = ("video",)

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(3, 4, 3, stride=(2, 1, 1), padding=1)
        self.b = nn.Conv3d(4, 4, 3, padding=1)
        self.short = nn.Conv3d(3, 4, 1, stride=(2, 1, 1))
        self.c = nn.Conv3d(4, 4, 3, padding=(2, 1, 1), dilation=(2, 1, 1))
        self.pool = nn.MaxPool3d((2, 1, 1), stride=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, video: Tensor) -> Tensor:
        y = self.b(torch.relu(self.a(video))) + self.short(video)
        y = self.pool(torch.relu(self.c(y)))
        return self.fc(y.amax(dim=(2, 3, 4)))


def test_offsets_and_delays_of_a_strided_residual() -> None:
    model = _Strided().eval()
    sm = _check(model, {}, 9, (6, 5))
    out = {(layer.name, layer.op.split()[0]): layer for layer in sm.layers}
    # input (0,1,9). a: k3 s2 p1 -> offset 0 + 1*(2 - 1) = 1, stride 2, length (9+2-3)//2+1 = 5
    assert out[("a", "conv")].output == Signature(1, 2, 5)
    assert out[("a", "conv")].receptive_field == 3
    # b: k3 s1 p1 on a -> offset 1 + 2*(2 - 1) = 3
    assert out[("b", "conv")].output == Signature(3, 2, 5)
    assert out[("b", "conv")].receptive_field == 7
    # the 1x1x1 shortcut takes input frame 2j at step 2j, so it is 3 steps early: a delay of
    # ceil(3 / 2) = 2 pushes (offset difference not a multiple of the stride)
    assert out[("short", "conv")].output == Signature(0, 2, 5)
    delays = [layer for layer in sm.layers if layer.op.startswith("delay")]
    assert [(d.op, d.inputs, d.output) for d in delays] == [
        ("delay 2", (Signature(0, 2, 5),), Signature(3, 2, 5))
    ]
    # c: dilation 2, padding 2 -> reach 4, offset 3 + 2*(4 - 2) = 7
    assert out[("c", "conv")].output == Signature(7, 2, 5)
    # max over 2 frames, stride 1 -> offset 7 + 2 = 9, length 4; last frame at 9 + 2*3 = 15
    assert out[("pool", "max")].output == Signature(9, 2, 4)
    assert sm.num_steps == 16
    assert sm.streaming_receptive_field() == {
        "num_frames": 9,
        "num_steps": 16,
        "flush_steps": 7,
        "receptive_field": 17,
    }
    text = sm.describe()
    for name in ("a", "b", "short", "c", "pool", "fc"):
        assert any(line.startswith(f"{name} ") for line in text.splitlines()), name
    assert "16 steps" in text


class _Mixed(nn.Module):
    """Two inputs, even 'same' kernel, groups, an unfoldable BatchNorm, gating, AvgPool3d with
    spatial padding, a per-channel parameter, global mean and sum, a BatchNorm1d head."""

    input_keys = ("video", "mask")

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv3d(3, 8, (2, 3, 3), padding="same")
        self.bn = nn.BatchNorm3d(8)
        self.g = nn.Conv3d(8, 8, 3, padding=1, groups=4, bias=False)
        self.gbn = nn.BatchNorm3d(8)
        self.m = nn.Conv3d(1, 8, (3, 1, 1), padding=(1, 0, 0))
        self.pool = nn.AvgPool3d((3, 2, 2), stride=(2, 2, 2), padding=(0, 1, 1))
        self.pool2 = nn.AvgPool3d((1, 2, 2), count_include_pad=False, padding=(0, 1, 1))
        self.scale = nn.Parameter(torch.randn(16, 1, 1, 1))
        self.head_bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(16, 4)

    def forward(self, video: Tensor, mask: Tensor) -> Tensor:
        x = self.bn(torch.relu(self.c1(video)))
        x = torch.relu(self.gbn(self.g(x)))
        gate = torch.sigmoid(self.m(mask))
        y = torch.cat([x * gate, x - 0.5 * gate], dim=1)
        y = self.pool2(self.pool(y)) * self.scale
        logits = self.fc(self.drop(self.head_bn(y.mean(dim=(2, 3, 4)))))
        total = y.sum(dim=(2, 3, 4)).sum(dim=1, keepdim=True)  # (B, 1)
        return logits + 0.01 * total


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("fuse_taps", [False, True])
def test_mixed_operators_parity(fuse_taps: bool) -> None:
    sm = _check(_Mixed(), {}, 7, (12, 16), fuse_taps=fuse_taps)
    assert sm.frame_shapes == {"video": (3, 12, 16), "mask": (1, 12, 16)}
    assert any("batchnorm" in layer.op for layer in sm.layers)  # bn after ReLU: not folded


def test_streaming_module_exports_with_4d_tensors_only() -> None:
    loaded = load_model("msn", **MSN_SMALL, fusion="interpolation", streams=["rgb", "flow"])
    sm = to_streaming(loaded, num_frames=8, size=(16, 16))
    frames = [torch.randn(1, *sm.frame_shapes[k]) for k in sm.input_keys]
    args = (*frames, sm.schedule[3:4], *[torch.randn(s) for s in sm.state_shapes])
    ep = torch.export.export(sm, args)
    ranks = [n.meta["val"].dim() for n in ep.graph.nodes if isinstance(n.meta.get("val"), Tensor)]
    assert ranks and max(ranks) <= 4
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert not [t for t in targets if "3d" in t], targets
    with torch.no_grad():
        want = sm(*args)
        got = ep.module()(*args)
    assert len(got) == 1 + len(sm.state_shapes)
    for w, g in zip(want, got, strict=True):
        torch.testing.assert_close(g, w)


def test_state_is_carried_between_steps() -> None:
    """Feeding frames out of order, or resetting the state mid-clip, changes the logits."""
    loaded = load_model("c3d_tiny", width=4, num_classes=3)
    _randomise_norms(loaded.model)
    sm = to_streaming(loaded, num_frames=4, size=(16, 16))
    (clip,) = example_inputs(loaded, batch=1, seed=2, num_frames=4, size=(16, 16))
    want = sm.run_clip(clip)
    shuffled = sm.run_clip(clip[:, :, [3, 2, 1, 0]])
    assert (want - shuffled).abs().max().item() > 1e-4

    def run(reset_at: int) -> Tensor:
        states = sm.init_states(1)
        logits = torch.zeros(1)
        for step in range(sm.num_steps):
            if step == reset_at:
                states = sm.init_states(1)
            frame = clip[:, :, step] if step < sm.num_frames else torch.zeros_like(clip[:, :, 0])
            logits, *states = sm(frame, sm.schedule[step : step + 1], *states)
        return logits

    torch.testing.assert_close(run(-1), want)
    assert (run(2) - want).abs().max().item() > 1e-4


class _PaddedPool(nn.Module):
    input_keys = ("video",)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool3d(3, stride=1, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, video: Tensor) -> Tensor:
        return self.fc(self.pool(self.conv(video)).amax(dim=(2, 3, 4)))


class _Transposed(nn.Module):
    input_keys = ("video",)

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose3d(3, 4, 2, stride=2)
        self.fc = nn.Linear(4, 2)

    def forward(self, video: Tensor) -> Tensor:
        return self.fc(self.up(video).mean(dim=(2, 3, 4)))


class _ClipGate(nn.Module):
    """Squeeze-excitation over the whole clip: frames scaled by a clip-level statistic."""

    input_keys = ("video",)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, video: Tensor) -> Tensor:
        x = self.conv(video)
        x = x * torch.sigmoid(x.mean(dim=(2, 3, 4), keepdim=True))
        return self.fc(x.amax(dim=(2, 3, 4)))


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_PaddedPool(), r"'pool' \(MaxPool3d\): temporal padding 1 in a pooling layer"),
        (_Transposed(), r"'up' \(ConvTranspose3d\): a transposed convolution"),
        (_ClipGate(), r"depends on the whole clip"),
    ],
)
def test_unsupported_models_raise_clearly(model: nn.Module, message: str) -> None:
    with pytest.raises(StreamingError, match=message):
        to_streaming(model.eval(), num_frames=4, size=(8, 8))


def test_flatten_over_time_is_refused() -> None:
    with pytest.raises(StreamingError, match="reshapes a 5-D clip tensor"):
        to_streaming(
            "msn",
            **MSN_SMALL,
            streams=["rgb"],
            fusion_pool=[2, 2, 2],
            input_size=[16, 16],
        )


def test_bad_calls_raise() -> None:
    sm = to_streaming("c3d_tiny", width=4, num_classes=3, num_frames=4, size=(16, 16))
    with pytest.raises(ValueError, match="schedule is built for T = 4"):
        sm.run_clip(torch.zeros(1, 3, 5, 16, 16))
    with pytest.raises(ValueError, match="takes 1 clip"):
        sm.run_clip(torch.zeros(1, 3, 4, 16, 16), torch.zeros(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match="frame"):
        sm(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="gates must be"):
        sm(torch.zeros(1, 3, 16, 16), torch.zeros(1, sm.num_gates + 1), *sm.init_states())
