"""ONNX export: every registered model, MSN fusions and stream subsets, task checkpoints.

Each configuration is exported once per module (``exported``) with small architecture options
and 8-frame 32×32 clips, and every export is checked against PyTorch under onnxruntime on random
clips (batch 1 and 3) and on a real clip.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import lowres_har
from lowres_har.export.common import LoadedModel, example_inputs, load_model
from lowres_har.export.onnx import OnnxParityError, OnnxReport, OnnxRunner, to_onnx
from lowres_har.models.msn import FUSIONS

# The onnx extra is part of the test extra: a missing package fails these tests, never skips them.
for _module in ("onnx", "onnxruntime", "onnxscript"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f'tests/test_export_onnx.py needs {_module}: pip install -e ".[test]"')

ATOL = 1e-4
#: a short real clip (32 frames, 340×256) from ../shared/data/real_clips.
CLIP = "mmaction2/tests_data_rawvideo_dataset_part_0.mp4"
SMALL_CLIP: dict[str, Any] = {"num_frames": 8, "size": (32, 32)}
#: two convolution blocks and one hidden layer keep MSN's graph (and its export time) small.
MSN_SMALL: dict[str, Any] = {
    "kernel_size": 3,
    "widths": [8, 16],
    "pool_between": [[2, 2, 2]],
    "fc_widths": [16],
    "num_frames": 8,
    "input_size": (32, 32),
    "fusion": "sum",
}
#: name -> (architecture options, export options); models not listed use their defaults.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "c3d_tiny": ({"width": 8}, SMALL_CLIP),
    "r3d_18": ({"width": 8}, SMALL_CLIP),
    "mc3_18": ({"width": 8}, SMALL_CLIP),
    "r2plus1d_18": ({"width": 8}, SMALL_CLIP),
    "msn": (MSN_SMALL, SMALL_CLIP),
    "ad_resnet3d_18": ({"width": 8}, SMALL_CLIP),
    "ad_resnet3d_34": ({"width": 4}, SMALL_CLIP),
    "ad_resnet3d_50": ({"width": 4}, SMALL_CLIP),
    # 32 -> 14 is not an integer factor: covers the matrix form of adaptive average pooling
    "ms_resnet3d_18": ({"width": 4, "input_sizes": [14, 32]}, SMALL_CLIP),
    "ms_resnet3d_50": ({"width": 4, "input_sizes": [16, 32]}, SMALL_CLIP),
    "fpn_resnet3d_18": ({"width": 4, "input_size": 32}, SMALL_CLIP),
    "fpn_resnet3d_50": ({"width": 4, "input_size": 32}, SMALL_CLIP),
    "msfpn_resnet3d_18": ({"width": 4, "input_sizes": [16, 32]}, SMALL_CLIP),
}

Exported = tuple[OnnxReport, LoadedModel, dict[str, Any]]


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, real_clips: Path
) -> Callable[[str, dict[str, Any], dict[str, Any]], Exported]:
    """``exported(name, model_kwargs, export_kwargs)``: export once per module (5 classes, with
    the real clip) and return the report, the exported model and the export options."""
    done: dict[str, Exported] = {}

    def get(name: str, model_kwargs: dict[str, Any], export_kwargs: dict[str, Any]) -> Exported:
        key = json.dumps([name, model_kwargs, export_kwargs], sort_keys=True, default=str)
        if key not in done:
            loaded = load_model(name, num_classes=5, **model_kwargs)
            path = tmp_path_factory.mktemp("onnx") / f"{name}.onnx"
            report = to_onnx(loaded, path, real_video=real_clips / CLIP, **export_kwargs)
            done[key] = (report, loaded, export_kwargs)
        return done[key]

    return get


def _torch_logits(model: nn.Module, inputs: tuple[Tensor, ...]) -> np.ndarray:
    with torch.inference_mode():  # one thread: tiny clips, and cheap on a busy machine
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return model(*inputs).numpy()
        finally:
            torch.set_num_threads(previous)


def assert_export_ok(
    report: OnnxReport, loaded: LoadedModel, export_kwargs: dict[str, Any]
) -> None:
    """The file is valid ONNX, named and tagged as promised, and matches PyTorch at batch 1 and
    3 (fresh inputs, independent of the checks ``to_onnx`` ran itself)."""
    import onnx

    keys = tuple(loaded.input_keys)
    assert report.exporter == "dynamo", report.fallback_reason
    assert report.input_names == keys
    assert report.output_names == ("logits",)
    assert report.passed
    assert 0.0 <= report.max_abs_diff_random <= ATOL
    assert report.max_abs_diff_real is not None and 0.0 <= report.max_abs_diff_real <= ATOL
    assert report.file_bytes == report.path.stat().st_size > 0
    onnx.checker.check_model(str(report.path), full_check=True)
    proto = onnx.load(str(report.path))
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == report.opset

    runner = OnnxRunner(report.path, intra_op_threads=1)
    assert runner.input_names == keys
    for key in keys:
        declared = runner.input_shapes[key]
        assert isinstance(declared[0], str)  # symbolic batch axis
        assert tuple(declared[1:]) == report.input_shapes[key]
    meta = runner.metadata
    assert meta["model"] == report.model
    assert meta["opset"] == str(report.opset)
    assert meta["exporter"] == "dynamo"
    assert meta["lowres_har_version"] == lowres_har.__version__
    assert int(meta["num_classes"]) == loaded.num_classes == 5
    assert runner.class_names == loaded.class_names
    assert json.loads(meta["input_names"]) == list(keys)
    assert {k: tuple(v) for k, v in json.loads(meta["input_shapes"]).items()} == dict(
        report.input_shapes
    )
    for batch in (1, 3):
        inputs = example_inputs(loaded, batch=batch, seed=100 + batch, **export_kwargs)
        got = runner(*inputs)
        expected = _torch_logits(loaded.model, inputs)
        assert got.shape == expected.shape == (batch, loaded.num_classes)
        assert np.abs(got - expected).max() <= ATOL
        assert np.abs(expected).max() > 10 * ATOL  # a real comparison, not of zeros


@pytest.mark.parametrize("name", lowres_har.list_models())
def test_every_registered_model_exports(name: str, exported: Callable[..., Exported]) -> None:
    model_kwargs, export_kwargs = CASES.get(name, ({}, {}))
    report, loaded, kwargs = exported(name, model_kwargs, export_kwargs)
    assert report.model == name
    assert_export_ok(report, loaded, kwargs)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_msn_fusions_export(fusion: str, exported: Callable[..., Exported]) -> None:
    report, loaded, kwargs = exported("msn", {**MSN_SMALL, "fusion": fusion}, SMALL_CLIP)
    assert loaded.model.fusion_name == fusion
    assert report.input_names == ("video", "flow", "mask")
    assert_export_ok(report, loaded, kwargs)


@pytest.mark.parametrize(
    ("streams", "fusion"), [(("rgb",), "sum"), (("flow", "mask"), "interpolation")]
)
def test_msn_stream_subsets_export(
    streams: tuple[str, ...], fusion: str, exported: Callable[..., Exported]
) -> None:
    kwargs = {**MSN_SMALL, "fusion": fusion, "streams": list(streams)}
    report, loaded, export_kwargs = exported("msn", kwargs, SMALL_CLIP)
    assert report.input_names == loaded.input_keys
    assert len(report.input_names) == len(streams)
    assert_export_ok(report, loaded, export_kwargs)


def test_report_dict_and_summary(exported: Callable[..., Exported]) -> None:
    report, _, _ = exported("c3d_tiny", *CASES["c3d_tiny"])
    data = json.loads(json.dumps(report.as_dict()))
    assert data["path"] == str(report.path)
    assert data["input_shapes"] == {"video": [3, 8, 32, 32]}
    assert data["max_abs_diff_random"] == report.max_abs_diff_random
    assert data["passed"] is True
    assert data["real_video"].endswith(CLIP)
    text = report.summary()
    assert "c3d_tiny" in text and f"opset {report.opset}" in text and "dynamo" in text


def test_runner_rejects_bad_inputs(exported: Callable[..., Exported]) -> None:
    report, loaded, kwargs = exported("msn", MSN_SMALL, SMALL_CLIP)
    runner = OnnxRunner(report.path)
    video, flow, mask = example_inputs(loaded, **kwargs)
    with pytest.raises(ValueError, match=r"takes 3 inputs \['video', 'flow', 'mask'\], got 2"):
        runner(video, flow)
    with pytest.raises(ValueError, match="input 'mask' must have 5 dimensions"):
        runner(video, flow, mask[0])
    # numpy arrays work as well as tensors
    np.testing.assert_array_equal(
        runner(video.numpy(), flow.numpy(), mask.numpy()), runner(video, flow, mask)
    )


def test_task_checkpoint_exports_with_class_names(
    tmp_path: Path, real_clips: Path, log_capture: pytest.LogCaptureFixture
) -> None:
    import lightning as L

    from lowres_har.tasks import VideoClassificationTask

    names = ["walk", "wave", "jump"]
    task = VideoClassificationTask(
        model="c3d_tiny", model_kwargs={"width": 8}, num_classes=3, class_names=names
    )
    with torch.no_grad():  # weights a freshly built model would not have
        gen = torch.Generator().manual_seed(0)
        for p in task.model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=gen))
        task.model.fc.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.strategy.connect(task)
    ckpt = tmp_path / "task.ckpt"
    trainer.save_checkpoint(ckpt, weights_only=True)

    out = tmp_path / "deploy" / "c3d.onnx"  # the folder is created
    report = to_onnx(ckpt, out, real_video=real_clips / CLIP, dynamic_batch=False, **SMALL_CLIP)
    assert report.path == out and out.is_file()
    assert report.model == "c3d_tiny" and report.exporter == "dynamo" and report.passed
    assert report.max_abs_diff_real is not None and report.max_abs_diff_real <= ATOL
    assert not report.dynamic_batch
    runner = OnnxRunner(out)
    assert runner.class_names == names
    assert runner.metadata["source"] == str(ckpt)
    assert runner.metadata["dynamic_batch"] == "false"
    assert json.loads(runner.metadata["model_kwargs"]) == {"width": 8}
    assert runner.input_shapes["video"] == (1, 3, 8, 32, 32)
    with pytest.raises(RuntimeError, match=r"c3d\.onnx: onnxruntime failed on inputs .*\(3, 3, 8"):
        runner(torch.zeros(3, 3, 8, 32, 32))
    # the file computes the checkpoint's network, not a freshly initialised one
    video = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(5))
    expected = _torch_logits(task.model.eval(), (video,))
    fresh = _torch_logits(load_model("c3d_tiny", num_classes=3, width=8).model, (video,))
    assert np.abs(runner(video) - expected).max() <= ATOL
    assert np.abs(fresh - expected).max() > 0.1
    assert any("ONNX export: c3d_tiny" in r.getMessage() for r in log_capture.records)


class TinyNet(nn.Module):
    """One Conv3d and a classifier: fast to export."""

    input_keys = ("video",)

    def __init__(self, num_classes: int = 3, shift: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)
        self.shift = shift

    def forward(self, video: Tensor) -> Tensor:
        logits = self.fc(self.conv(video).relu().mean(dim=(2, 3, 4)))
        if self.shift and torch.onnx.is_in_onnx_export():
            logits = logits + self.shift  # the exported graph computes something else
        return logits


TINY_CLIP: dict[str, Any] = {"num_frames": 4, "size": (8, 8)}


def test_falls_back_to_torchscript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_export = torch.onnx.export

    def export(*args: Any, dynamo: bool = True, **kwargs: Any) -> Any:
        if dynamo:
            raise RuntimeError("simulated torch.export failure")
        return real_export(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", export)
    model = TinyNet()
    report = to_onnx(model, tmp_path / "tiny.onnx", **TINY_CLIP)
    assert report.exporter == "torchscript"
    assert report.fallback_reason is not None and "simulated" in report.fallback_reason
    assert report.passed and report.max_abs_diff_real is None
    runner = OnnxRunner(report.path)
    assert runner.metadata["exporter"] == "torchscript"
    assert isinstance(runner.input_shapes["video"][0], str)
    x = torch.randn(3, 3, 4, 8, 8)
    assert np.abs(runner(x) - _torch_logits(model, (x,))).max() <= ATOL
    with pytest.raises(RuntimeError, match="ONNX export of TinyNet failed: dynamo: .*simulated"):
        to_onnx(model, tmp_path / "again.onnx", exporter="dynamo", **TINY_CLIP)


def test_parity_failure_is_reported(tmp_path: Path) -> None:
    model = TinyNet(shift=0.5)
    with pytest.raises(OnnxParityError, match=r"TinyNet: .* differ from PyTorch by 5\.0+e-01"):
        to_onnx(model, tmp_path / "bad.onnx", exporter="torchscript", **TINY_CLIP)
    report = to_onnx(model, tmp_path / "bad.onnx", exporter="torchscript", check=False, **TINY_CLIP)
    assert not report.passed
    assert report.max_abs_diff_random == pytest.approx(0.5, abs=1e-5)
    assert "FAILED" in report.summary()


def test_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no_such_model.*neither a registered model"):
        to_onnx("no_such_model", tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        to_onnx(tmp_path / "missing.ckpt", tmp_path / "x.onnx")
    not_ckpt = tmp_path / "notes.ckpt"
    not_ckpt.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.ckpt"):
        to_onnx(not_ckpt, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match=r"real_video .*nowhere\.mp4"):
        to_onnx("c3d_tiny", tmp_path / "x.onnx", real_video=tmp_path / "nowhere.mp4")
    with pytest.raises(ValueError, match=r"\['width'\] apply to a model name or a checkpoint"):
        to_onnx(TinyNet(), tmp_path / "x.onnx", width=8)
    with pytest.raises(ValueError, match="unknown exporter 'tflite'"):
        to_onnx("c3d_tiny", tmp_path / "x.onnx", exporter="tflite")
    with pytest.raises(FileNotFoundError, match=r"ONNX model not found: .*absent\.onnx"):
        OnnxRunner(tmp_path / "absent.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_missing_onnxruntime_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    with pytest.raises(ImportError, match=r'pip install "lowres-har\[onnx\]"'):
        OnnxRunner(tmp_path / "any.onnx")
    with pytest.raises(ImportError, match=r'pip install "lowres-har\[onnx\]"'):
        to_onnx(TinyNet(), tmp_path / "tiny.onnx", **TINY_CLIP)
    assert not (tmp_path / "tiny.onnx").exists()
