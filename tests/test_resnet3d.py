"""AD-ResNet-3D: stride adaptation, heads, torchvision parity, 3D-ResNets-PyTorch checkpoints."""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import lowres_har
from lowres_har.models.resnet3d import (
    ResNet3D,
    convert_3d_resnets_checkpoint,
    convert_3d_resnets_state_dict,
    load_3d_resnets_checkpoint,
    read_3d_resnets_checkpoint,
    spatial_strides,
)

NAMES = ("ad_resnet3d_18", "ad_resnet3d_34", "ad_resnet3d_50")
THESIS_SIZES = (14, 28, 56, 112)


pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(size: int, frames: int = 2, batch: int = 1, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, frames, size, size, generator=gen)


def _randomise_bn(model: nn.Module, seed: int = 1) -> None:
    """Non-trivial BatchNorm statistics and affine parameters, so eval outputs test them too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))


# ---------------------------------------------------------------------------------------------
# stride adaptation


@pytest.mark.parametrize(
    ("size", "ops", "expected"),
    [
        # the thesis' rule: stride 1 in the first n - log2(size / 7) stride-2 operations
        (14, 4, (1, 1, 1, 2)),
        (28, 4, (1, 1, 2, 2)),
        (56, 4, (1, 2, 2, 2)),
        (112, 4, (2, 2, 2, 2)),
        (14, 5, (1, 1, 1, 1, 2)),
        (112, 5, (1, 2, 2, 2, 2)),
        (224, 5, (2, 2, 2, 2, 2)),
        # other sizes: as few stride-1 operations as keep the last map >= 7
        (32, 4, (1, 1, 2, 2)),  # 32 -> 16 -> 8
        (16, 4, (1, 1, 1, 2)),  # 16 -> 8
        (7, 4, (1, 1, 1, 1)),
        (224, 4, (2, 2, 2, 2)),  # cannot halve more often than 4 times: 14×14
        (13, 4, (1, 1, 1, 2)),  # ceil(13 / 2) = 7
    ],
)
def test_spatial_strides_rule(size: int, ops: int, expected: tuple[int, ...]) -> None:
    strides = spatial_strides(size, ops)
    assert strides == expected
    side = size
    for s in strides:
        side = math.ceil(side / s)
    assert side >= 7
    if 1 in strides:  # a stride-1 operation is only spent where halving would fall below 7
        assert math.ceil(side / 2) < 7


def test_spatial_strides_standard_and_errors() -> None:
    assert spatial_strides(14, 4, adapt=False) == (2, 2, 2, 2)
    with pytest.raises(ValueError, match=r"input_size=6 is smaller than the 7×7"):
        spatial_strides(6, 4)
    with pytest.raises(ValueError, match="input_size must be an int"):
        spatial_strides(True, 4)  # type: ignore[arg-type]


@pytest.mark.parametrize("layout", ["torchvision", "3d-resnets"])
@pytest.mark.parametrize("size", THESIS_SIZES)
def test_last_stage_is_7x7_at_thesis_sizes(size: int, layout: str) -> None:
    model = lowres_har.create_model("ad_resnet3d_18", input_size=size, layout=layout, width=4)
    with torch.no_grad():
        feats = model.forward_features(_clip(size, frames=1))
    assert tuple(feats[-1].shape[-2:]) == (7, 7)
    # map_sizes documents what the network really does, stage by stage
    assert [f.shape[-1] for f in feats] == list(model.map_sizes()[1:])
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32]


@pytest.mark.parametrize("size", THESIS_SIZES)
def test_last_stage_is_7x7_bottleneck(size: int) -> None:
    model = lowres_har.create_model("ad_resnet3d_50", input_size=size, width=4)
    with torch.no_grad():
        feats = model.forward_features(_clip(size, frames=1))
    assert tuple(feats[-1].shape[-2:]) == (7, 7)
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]  # 4 × width × (1, 2, 4, 8)


def test_other_sizes_and_standard_strides() -> None:
    m32 = lowres_har.create_model("ad_resnet3d_18", input_size=32, width=4)
    m224 = lowres_har.create_model("ad_resnet3d_18", input_size=224, layout="3d-resnets", width=4)
    std = lowres_har.create_model("ad_resnet3d_18", input_size=56, adapt_strides=False, width=4)
    with torch.no_grad():
        assert m32.forward_features(_clip(32))[-1].shape[-2:] == (8, 8)
        assert m224.forward_features(_clip(224, frames=1))[-1].shape[-2:] == (7, 7)
        assert std.forward_features(_clip(56))[-1].shape[-2:] == (4, 4)  # 56 / 16, rounded up
        # input_size only sets strides: any clip size runs
        assert m32(_clip(20, frames=3, batch=2)).shape == (2, 400)


def test_only_spatial_strides_adapt() -> None:
    # 8 frames: stages 2-4 halve T whatever the spatial strides (3D-ResNets: the pool too)
    for layout, frames in (("torchvision", [8, 4, 2, 1]), ("3d-resnets", [4, 2, 1, 1])):
        for size in (14, 112):
            model = ResNet3D(input_size=size, layout=layout, width=4)
            with torch.no_grad():
                feats = model.forward_features(_clip(size, frames=8))
            assert [f.shape[2] for f in feats] == frames


def test_layouts() -> None:
    tv = ResNet3D(width=4)
    hara = ResNet3D(width=4, layout="3d-resnets")
    assert tuple(tv.stem[0].weight.shape) == (4, 3, 3, 7, 7) and len(tv.stem) == 3
    assert tuple(hara.stem[0].weight.shape) == (4, 3, 7, 7, 7)
    assert isinstance(hara.stem[3], nn.MaxPool3d)
    custom = ResNet3D(width=4, conv1_t_size=5, max_pool=True)
    assert custom.stem[0].weight.shape[2] == 5 and custom.spatial_strides == (1, 2, 2, 2, 2)


# ---------------------------------------------------------------------------------------------
# every variant and head trains


@pytest.mark.parametrize("head", ["avg", "attention", "dfb"])
@pytest.mark.parametrize("name", NAMES)
def test_variants_and_heads_forward_backward(name: str, head: str) -> None:
    torch.manual_seed(0)
    kwargs = {"head_kwargs": {"num_heads": 4}} if head == "attention" else {}
    model = lowres_har.create_model(
        name, num_classes=5, input_size=32, width=4, head=head, dropout=0.2, **kwargs
    )
    assert model.num_classes == 5
    logits = model(_clip(32, batch=2))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads["stem.0.weight"].abs().sum() > 0  # type: ignore[union-attr]
    if head == "avg":
        assert "fc.weight" in grads and not any(n.startswith("head.") for n in grads)
    else:
        assert "fc.weight" not in grads and "head.fc.weight" in grads
    model.reset_classifier(3)
    assert model.num_classes == 3 and model(_clip(32)).shape == (1, 3)


# ---------------------------------------------------------------------------------------------
# torchvision


def test_torchvision_r3d_18_loads_strictly_and_matches() -> None:
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    tv = r3d_18(num_classes=400)
    _randomise_bn(tv)
    tv.eval()
    ours = lowres_har.create_model("ad_resnet3d_18", adapt_strides=False).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = _clip(32, frames=4, batch=2, seed=3)
    with torch.no_grad():
        expected = tv(x)
        torch.testing.assert_close(ours(x), expected, rtol=0, atol=1e-5)
        # at the default input_size (112) the torchvision layout needs no adaptation: same net
        default = lowres_har.create_model("ad_resnet3d_18").eval()
        default.load_state_dict(tv.state_dict(), strict=True)
        torch.testing.assert_close(default(x), expected, rtol=0, atol=1e-5)
        # dropout adds no parameters
        dropped = lowres_har.create_model("ad_resnet3d_18", dropout=0.5).eval()
        dropped.load_state_dict(tv.state_dict(), strict=True)
        torch.testing.assert_close(dropped(x), expected, rtol=0, atol=1e-5)
    assert expected.abs().max() > 1e-3
    # adapted strides: the same tensors load (strides have no weights), the function differs
    adapted = lowres_har.create_model("ad_resnet3d_18", input_size=56).eval()
    adapted.load_state_dict(tv.state_dict(), strict=True)
    with torch.no_grad():
        assert (adapted(x) - expected).abs().max() > 1e-4


# ---------------------------------------------------------------------------------------------
# 3D-ResNets-PyTorch checkpoints: a small reference network with that repository's layout


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False)


class _RefBasic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, down: nn.Module | None) -> None:
        super().__init__()
        self.conv1, self.bn1 = _conv3(cin, planes, stride), nn.BatchNorm3d(planes)
        self.conv2, self.bn2 = _conv3(planes, planes), nn.BatchNorm3d(planes)
        self.relu = nn.ReLU()
        self.downsample = down

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class _RefBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, down: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2, self.bn2 = _conv3(planes, planes, stride), nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = down

    def forward(self, x: Tensor) -> Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class _Ref3DResNet(nn.Module):
    """3D-ResNets-PyTorch's ResNet (shortcut B): conv1 t×7×7, max-pool 3 / 2, strided stages."""

    def __init__(self, bottleneck: bool, layers: list[int], width: int, classes: int) -> None:
        super().__init__()
        block = _RefBottleneck if bottleneck else _RefBasic
        self.conv1 = nn.Conv3d(3, width, (7, 7, 7), (1, 2, 2), (3, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool3d(3, 2, 1)
        cin = width
        for i, n in enumerate(layers):
            planes, stride = width * 2**i, 1 if i == 0 else 2
            out = planes * block.expansion
            down = None
            if stride != 1 or cin != out:
                down = nn.Sequential(
                    nn.Conv3d(cin, out, 1, stride=stride, bias=False), nn.BatchNorm3d(out)
                )
            blocks = [block(cin, planes, stride, down)]
            blocks += [block(out, planes, 1, None) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = out
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def _save_like_3d_resnets(model: nn.Module, path: Path, arch: str) -> None:
    """Save as that repository's training loop does: DataParallel keys, optimizer state."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    model(torch.randn(2, 3, 4, 16, 16)).sum().backward()
    opt.step()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(
        {"epoch": 200, "arch": arch, "state_dict": state, "optimizer": opt.state_dict()}, path
    )


@pytest.fixture(scope="module")
def hara_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, nn.Module]]:
    out = {}
    root = tmp_path_factory.mktemp("hara")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures start before the per-test one-thread fixture
    for depth, bottleneck, layers, width in (
        (18, False, [2, 2, 2, 2], 8),
        (50, True, [3, 4, 6, 3], 4),
    ):
        torch.manual_seed(depth)
        ref = _Ref3DResNet(bottleneck, layers, width, classes=7)
        _randomise_bn(ref, seed=depth)
        _save_like_3d_resnets(ref, root / f"r3d{depth}_K_200ep.pth", f"resnet-{depth}")
        out[str(depth)] = (root / f"r3d{depth}_K_200ep.pth", ref.eval())
    torch.set_num_threads(previous)
    return out


@pytest.mark.parametrize("depth", ["18", "50"])
def test_3d_resnets_checkpoint_loads_and_matches(
    depth: str, hara_checkpoints: dict[str, tuple[Path, nn.Module]]
) -> None:
    path, ref = hara_checkpoints[depth]
    model = load_3d_resnets_checkpoint(path, adapt_strides=False).eval()
    assert model.layout == "3d-resnets" and model.max_pool and model.conv1_t_size == 7
    assert model.num_classes == 7
    x = _clip(32, frames=8, batch=2, seed=4)
    with torch.no_grad():
        expected = ref(x)
        torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-5)
    assert torch.isfinite(expected).all() and expected.abs().max() > 1e-3
    # the registered model built with the same options computes the same function
    state, info = read_3d_resnets_checkpoint(path)
    assert info["depth"] == int(depth) and info["arch"] == f"resnet-{depth}"
    twin = lowres_har.create_model(
        f"ad_resnet3d_{depth}",
        num_classes=7,
        adapt_strides=False,
        layout="3d-resnets",
        width=info["width"],
    ).eval()
    twin.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), expected, rtol=0, atol=1e-5)


def test_3d_resnets_options(
    hara_checkpoints: dict[str, tuple[Path, nn.Module]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, ref = hara_checkpoints["18"]
    x = _clip(32, frames=4, seed=5)
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        fine = load_3d_resnets_checkpoint(path, num_classes=3, input_size=32).eval()
    assert "re-initialised the classifier (7 -> 3" in caplog.text
    assert fine.num_classes == 3 and fine.spatial_strides == (1, 1, 1, 2, 2)
    with torch.no_grad():
        assert fine(x).shape == (1, 3)
        torch.testing.assert_close(fine.stem[0].weight, ref.conv1.weight)
        torch.testing.assert_close(
            fine.layer3[1].conv2[1].running_var, ref.layer3[1].bn2.running_var
        )
    attn = load_3d_resnets_checkpoint(
        path, num_classes=4, head="attention", head_kwargs={"num_heads": 2}
    )
    assert attn.num_classes == 4 and not hasattr(attn, "fc")
    torch.testing.assert_close(
        attn.layer4[0].downsample[0].weight, ref.layer4[0].downsample[0].weight
    )

    # converted file -> create_model(pretrained=...) with the returned name and options
    spec = convert_3d_resnets_checkpoint(path, tmp_path / "out" / "r3d18.pth")
    assert spec == {
        "name": "ad_resnet3d_18",
        "kwargs": {"layout": "3d-resnets", "conv1_t_size": 7, "width": 8},
        "num_classes": 7,
    }
    model = lowres_har.create_model(
        spec["name"],
        pretrained=tmp_path / "out" / "r3d18.pth",
        adapt_strides=False,
        **spec["kwargs"],
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=1e-5)


def test_3d_resnets_conversion_names() -> None:
    state = {
        "module.conv1.weight": torch.zeros(1),
        "module.bn1.running_mean": torch.zeros(1),
        "module.layer2.1.conv2.weight": torch.zeros(2),
        "module.layer2.1.bn2.num_batches_tracked": torch.zeros(()),
        "module.layer3.0.downsample.1.bias": torch.zeros(3),
        "module.fc.weight": torch.zeros(4),
    }
    converted = convert_3d_resnets_state_dict(state)
    assert sorted(converted) == sorted(
        [
            "stem.0.weight",
            "stem.1.running_mean",
            "layer2.1.conv2.0.weight",
            "layer2.1.conv2.1.num_batches_tracked",
            "layer3.0.downsample.1.bias",
            "fc.weight",
        ]
    )
    assert converted["layer3.0.downsample.1.bias"] is state["module.layer3.0.downsample.1.bias"]
    with pytest.raises(ValueError, match=r"unknown keys: features\.conv0\.weight"):
        convert_3d_resnets_state_dict({"features.conv0.weight": torch.zeros(1)})


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("pwned",))


def test_3d_resnets_bad_checkpoints(
    hara_checkpoints: dict[str, tuple[Path, nn.Module]], tmp_path: Path
) -> None:
    path, _ = hara_checkpoints["18"]
    ckpt = torch.load(path, weights_only=True)
    shortcut_a = dict(ckpt)
    shortcut_a["state_dict"] = {
        k: v for k, v in ckpt["state_dict"].items() if ".downsample." not in k
    }
    torch.save(shortcut_a, tmp_path / "a.pth")
    with pytest.raises(ValueError, match=r"a\.pth: no downsample convolutions .*shortcut"):
        load_3d_resnets_checkpoint(tmp_path / "a.pth")
    wrong_arch = dict(ckpt, arch="resnet-34")
    torch.save(wrong_arch, tmp_path / "arch.pth")
    with pytest.raises(ValueError, match=r"arch 'resnet-34' disagrees with the weights \(depth 18"):
        read_3d_resnets_checkpoint(tmp_path / "arch.pth")
    with (tmp_path / "evil.pth").open("wb") as f:
        pickle.dump({"state_dict": _Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match=r"evil\.pth: cannot be read with weights_only=True"):
        read_3d_resnets_checkpoint(tmp_path / "evil.pth")
    torch.save({"epoch": 1}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match=r"empty\.pth: no state dict found"):
        read_3d_resnets_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        read_3d_resnets_checkpoint(tmp_path / "nothing.pth")


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_size": 6}, ValueError, r"input_size=6 is smaller than the 7×7"),
        ({"input_size": "112"}, ValueError, "input_size must be an int"),
        ({"head": "max"}, ValueError, r"unknown head 'max'; choose one of \['avg', 'attention'"),
        ({"head_kwargs": {"num_heads": 2}}, ValueError, "head 'avg' takes no options"),
        ({"head": "dfb", "head_kwargs": {"bogus": 1}}, ValueError, "takes no option"),
        ({"layout": "caffe"}, ValueError, "unknown layout 'caffe'"),
        ({"conv1_t_size": 4}, ValueError, "conv1_t_size must be odd"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\)"),
        ({"width": 0}, ValueError, "width must be an int >= 1"),  # overrides width=4
        ({"block": "basic"}, TypeError, "fixed by the model name"),
        ({"depth": 18}, TypeError, "depth"),
    ],
)
def test_clear_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        lowres_har.create_model("ad_resnet3d_18", **{"width": 4, **kwargs})


def test_cards() -> None:
    for name in NAMES:
        card = lowres_har.model_card(name)
        assert card.input_keys == ("video",) and card.docs == "models/ad_resnet3d.md"
        assert card.classifier[0] == "fc" and "head" in card.classifier
        assert card.paper is not None and "thesis" in card.paper.venue.lower()
        assert "adapt_strides" in card.choices and "layout" in card.choices
    results = lowres_har.model_card("ad_resnet3d_18").reported_results
    assert {r.source for r in results} >= {"thesis, Table 4.3", "thesis, Table 4.6"}
    assert any(r.value == 36.5 and r.metric == "F1 (%)" for r in results)
