"""Every registered model: shapes, interface, state-dict round trip, pretrained loading."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
import torch

import lowres_har
from lowres_har.weights import read_state_dict

MODELS = lowres_har.list_models()


def _inputs(name: str, batch: int = 2) -> list[torch.Tensor]:
    card = lowres_har.model_card(name)
    torch.manual_seed(0)
    out = []
    for spec in card.inputs.values():
        frames = 4 if spec.frames is not None else None
        shape = (batch, spec.channels, frames, 32, 32) if frames else (batch, spec.channels, 32, 32)
        out.append(torch.randn(shape))
    return out


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shapes(name: str) -> None:
    model = lowres_har.create_model(name, num_classes=7)
    assert tuple(model.input_keys) == lowres_har.model_card(name).input_keys
    inputs = _inputs(name)
    logits = model(*inputs)
    assert logits.shape == (2, 7)
    logits.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads if g is not None)


@pytest.mark.parametrize("name", MODELS)
def test_forward_features_and_head(name: str) -> None:
    model = lowres_har.create_model(name, num_classes=5).eval()
    inputs = _inputs(name)
    if not hasattr(model, "forward_features"):
        pytest.skip(f"{name} exposes no intermediate features")
    feats = model.forward_features(*inputs)
    assert len(feats) >= 1 and all(f.shape[0] == 2 for f in feats)
    torch.testing.assert_close(model.forward_head(feats), model(*inputs))


@pytest.mark.parametrize("name", MODELS)
def test_reset_classifier(name: str) -> None:
    model = lowres_har.create_model(name, num_classes=5)
    model.reset_classifier(3)
    assert model(*_inputs(name)).shape == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_round_trip(name: str, tmp_path: Path) -> None:
    a = lowres_har.create_model(name, num_classes=6).eval()
    path = tmp_path / "w.pth"
    torch.save(a.state_dict(), path)
    b = lowres_har.create_model(name, pretrained=path).eval()  # num_classes inferred: 6
    inputs = _inputs(name)
    torch.testing.assert_close(a(*inputs), b(*inputs))


@pytest.mark.parametrize("name", MODELS)
def test_pretrained_other_num_classes(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = lowres_har.create_model(name, num_classes=6)
    path = tmp_path / "w.pth"
    torch.save({"state_dict": a.state_dict(), "epoch": 3}, path)  # wrapped state dict
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        b = lowres_har.create_model(name, num_classes=4, pretrained=path)
    classifier = lowres_har.model_card(name).classifier
    sa, sb = a.state_dict(), b.state_dict()
    reinit = [k for k in sb if any(k.startswith(c + ".") for c in classifier)]
    assert reinit, "expected classifier keys"
    for key in sb:
        if key in reinit:
            assert sb[key].shape != sa[key].shape or sb[key].ndim == 0
        else:
            torch.testing.assert_close(sb[key], sa[key])
    assert "re-initialised classifier keys" in caplog.text
    assert all(k in caplog.text for k in reinit if sb[k].shape != sa[k].shape)


def test_safetensors_and_lightning_ckpt(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    a = lowres_har.create_model("r3d_18", num_classes=3).eval()
    save_file(a.state_dict(), str(tmp_path / "w.safetensors"))
    b = lowres_har.create_model("r3d_18", pretrained=tmp_path / "w.safetensors").eval()
    x = _inputs("r3d_18")
    torch.testing.assert_close(a(*x), b(*x))
    # a Lightning checkpoint of a task: keys prefixed "model.", other entries ignored
    ckpt = {
        "state_dict": {f"model.{k}": v for k, v in a.state_dict().items()}
        | {"teacher.w": torch.zeros(1)},
        "epoch": 1,
        "hyper_parameters": {"lr": 0.1, "model": "r3d_18"},
    }
    torch.save(ckpt, tmp_path / "t.ckpt")
    c = lowres_har.create_model("r3d_18", pretrained=tmp_path / "t.ckpt").eval()
    torch.testing.assert_close(a(*x), c(*x))


def test_backbone_shape_mismatch_is_an_error(tmp_path: Path) -> None:
    a = lowres_har.create_model("r3d_18", num_classes=3)
    state = a.state_dict()
    state["layer1.0.conv1.0.weight"] = torch.zeros(1, 2, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.0\.weight"):
        lowres_har.create_model("r3d_18", pretrained=tmp_path / "bad.pth")


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("pwned",))


def test_untrusted_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"state_dict": _Evil()}, f)
    with pytest.raises(ValueError, match="weights_only"):
        read_state_dict(path)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        lowres_har.create_model("r3d_18", pretrained=tmp_path / "nope.pth")


def test_torchvision_format_state_dict_loads_strictly() -> None:
    from torchvision.models.video import r2plus1d_18 as tv_r2plus1d

    tv = tv_r2plus1d(num_classes=400).eval()
    ours = lowres_har.create_model("r2plus1d_18").eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(1, 3, 4, 32, 32)
    torch.testing.assert_close(ours(x), tv(x))


def test_checkpoint_with_no_matching_key_is_refused(tmp_path: Path) -> None:
    """A 3D-ResNets-PyTorch file passed straight to ``pretrained=`` must not load nothing quietly."""
    state = {
        "conv1.weight": torch.zeros(8, 3, 7, 7, 7),
        "bn1.weight": torch.ones(8),
        "layer1.0.conv1.weight": torch.zeros(8, 8, 3, 3, 3),
    }
    path = tmp_path / "r3d18_K_200ep.pth"
    torch.save({"state_dict": state, "arch": "resnet-18"}, path)
    with pytest.raises(ValueError, match="convert_3d_resnets_checkpoint") as err:
        lowres_har.create_model("ad_resnet3d_18", num_classes=5, width=8, pretrained=path)
    assert str(path) in str(err.value)
    with pytest.raises(ValueError, match="load_backbone_weights"):  # pyramid: under backbone.
        lowres_har.create_model("fpn_resnet3d_18", num_classes=5, width=8, pretrained=path)
    path2 = tmp_path / "other.pth"
    torch.save({"encoder.w": torch.zeros(3)}, path2)
    with pytest.raises(ValueError, match="none of its 1 tensors"):
        lowres_har.create_model("c3d_tiny", num_classes=5, pretrained=path2)
