"""TFLite export: float32 parity for MSN (every fusion) and the 3D-CNNs, a real clip, dynamic-range
int8, the flatbuffer readers and the interpreter wrapper.

Every model is tiny (MSN 3×3×3 kernels and widths 8/16/32, the r3d family ``width=8``) on 8-frame
32×32 clips; each conversion is made once per module and shared.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# The tflite extra is part of the test extra: a missing package fails here, it is not skipped.
import ai_edge_litert  # noqa: E402, F401
import litert_torch  # noqa: E402, F401
import numpy as np
import pytest
import torch
from torch import Tensor, nn

from lowres_har.export.common import LoadedModel, example_inputs, load_model  # noqa: E402
from lowres_har.export.tflite import (  # noqa: E402
    DYNAMIC_MAX_RELATIVE_DIFF,
    DYNAMIC_MIN_TOP1,
    TFLiteParityError,
    TFLiteReport,
    TFLiteRunner,
    _check,
    _to_input,
    op_list,
    read_metadata,
    to_tflite,
)
from lowres_har.models.msn import FUSIONS  # noqa: E402

# torch.export inside litert-torch warns about its own pytree internals
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")

T, HW = 8, (32, 32)
MSN_KW: dict[str, Any] = {
    "kernel_size": 3,
    "widths": [8, 16, 32],
    "fc_widths": [32] * 3,
    "num_frames": T,
    "input_size": HW,
    "num_classes": 5,
}
CNNS = ("r3d_18", "mc3_18", "r2plus1d_18", "c3d_tiny")
# A small real clip (32 frames, 340×256).
REAL_CLIP = "mmaction2/tests_data_rawvideo_dataset_part_0.mp4"


def _build(key: str) -> LoadedModel:
    torch.manual_seed(0)
    if key.startswith("msn_"):
        return load_model("msn", fusion=key[4:], **MSN_KW)
    return load_model(key, width=8, num_classes=5)


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny convolutions run far faster on one thread than contending for a loaded machine's
    cores (tracing and the PyTorch side of each parity check run them)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Callable[[str], tuple[LoadedModel, TFLiteReport]]:
    """``exported(key) -> (model, float32 report)``, converted once per module.

    ``msn_sum`` is also checked on the real clip (``real_clips`` skips where it is missing)."""
    folder = tmp_path_factory.mktemp("tflite")
    made: dict[str, tuple[LoadedModel, TFLiteReport]] = {}

    def get(key: str) -> tuple[LoadedModel, TFLiteReport]:
        if key not in made:
            loaded = _build(key)
            real = None
            if key == "msn_sum":
                real = request.getfixturevalue("real_clips") / REAL_CLIP
            report = to_tflite(
                loaded, folder / f"{key}.tflite", num_frames=T, size=HW, real_video=real
            )
            made[key] = (loaded, report)
        return made[key]

    return get


def _check_float(loaded: LoadedModel, report: TFLiteReport) -> None:
    assert report.quantize is None and report.atol == 1e-3
    assert report.max_abs_diff_random <= 1e-3
    assert report.top1_agreement_random == 1.0
    assert report.input_names == list(loaded.input_keys)
    assert report.input_shapes == {
        k: [1, c, T, *HW] for k, c in zip(loaded.input_keys, (3, 2, 1), strict=False)
    }
    # every Conv3d / Linear of the network became one CONV_3D / FULLY_CONNECTED
    assert report.op_counts["CONV_3D"] == _count(loaded.model, nn.Conv3d)
    assert report.op_counts["FULLY_CONNECTED"] == _count(loaded.model, nn.Linear)
    assert "DEQUANTIZE" not in report.op_counts
    assert report.file_bytes == Path(report.path).stat().st_size > 0


@pytest.mark.parametrize("fusion", FUSIONS)
def test_msn_float_parity(exported: Callable[..., Any], fusion: str) -> None:
    loaded, report = exported(f"msn_{fusion}")
    _check_float(loaded, report)
    assert report.input_names == ["video", "flow", "mask"]
    meta = report.metadata
    assert meta == read_metadata(report.path)
    assert meta["model"] == "msn" and meta["model_kwargs"]["fusion"] == fusion
    assert meta["num_classes"] == 5 and len(meta["class_names"]) == 5
    assert meta["input_keys"] == ["video", "flow", "mask"]
    assert meta["input_shapes"]["flow"] == [1, 2, T, *HW]
    assert meta["quantize"] is None and meta["lowres_har_version"]


@pytest.mark.parametrize("name", CNNS)
def test_3dcnn_float_parity(exported: Callable[..., Any], name: str) -> None:
    loaded, report = exported(name)
    _check_float(loaded, report)
    assert report.model == name and report.input_names == ["video"]


def test_real_clip_parity(exported: Callable[..., Any]) -> None:
    loaded, report = exported("msn_sum")
    assert report.max_abs_diff_real is not None
    assert report.max_abs_diff_real <= 1e-3
    assert report.top1_agreement_real == 1.0
    assert "real" in report.summary()


def test_op_list_reads_the_flatbuffer(exported: Callable[..., Any], tmp_path: Path) -> None:
    loaded, report = exported("r3d_18")
    ops = op_list(report.path)
    assert ops.count("CONV_3D") == _count(loaded.model, nn.Conv3d) == 20
    assert ops.count("FULLY_CONNECTED") == 1
    assert {op: ops.count(op) for op in set(ops)} == report.op_counts
    with pytest.raises(FileNotFoundError, match="no such TFLite file"):
        op_list(tmp_path / "missing.tflite")
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        op_list(bogus)


def test_dynamic_int8(exported: Callable[..., Any], tmp_path: Path) -> None:
    loaded, float_report = exported("msn_sum")
    report = to_tflite(
        loaded, tmp_path / "dyn.tflite", quantize="dynamic", num_frames=T, size=HW, num_random=16
    )
    # same graph plus one DEQUANTIZE per 3-D filter; CONV_3D computes in float, FC in hybrid int8
    n_conv, n_fc = _count(loaded.model, nn.Conv3d), _count(loaded.model, nn.Linear)
    ops = dict(report.op_counts)
    assert ops.pop("DEQUANTIZE") == n_conv
    assert ops == float_report.op_counts
    assert report.dequantized_weight_ops == {"CONV_3D": n_conv}
    assert report.int8_weight_ops == {"FULLY_CONNECTED": n_fc}
    assert report.metadata["quantize"] == "dynamic" and report.atol is None
    # int8 weights: about a quarter of the float file (metadata and graph aside)
    assert report.file_bytes < 0.4 * float_report.file_bytes
    # it runs, its logits moved (quantised) but stay within 5% of the logit range, and top-1
    # agrees with PyTorch (seen: 16/16 random clips, max diff ~0.2 on logits up to ~20)
    assert report.top1_agreement_random >= max(DYNAMIC_MIN_TOP1, 0.9)
    assert report.max_abs_diff_random <= DYNAMIC_MAX_RELATIVE_DIFF * report.max_abs_logit_random
    clips = example_inputs(loaded, batch=8, seed=123, num_frames=T, size=HW)
    with torch.no_grad():
        ref = loaded.model(*clips).numpy()
    out = TFLiteRunner(report.path)(*clips)
    float_out = TFLiteRunner(float_report.path)(*clips)
    diff = float(np.abs(out - ref).max())
    assert 1e-4 < diff <= 0.05 * float(np.abs(ref).max())
    assert float(np.abs(float_out - ref).max()) <= 1e-3
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.75
    assert "FULLY_CONNECTED" in report.summary()
    # the check=True bounds (a broken quantisation keeps top-1 on such random nets but not
    # the logits' scale, hence the relative bound)
    skewed = dataclasses.replace(report, max_abs_diff_random=0.2 * report.max_abs_logit_random)
    with pytest.raises(TFLiteParityError, match="logits differ by up to"):
        _check(skewed, "msn")
    with pytest.raises(TFLiteParityError, match="agrees with PyTorch on 50%"):
        _check(dataclasses.replace(report, top1_agreement_random=0.5), "msn")


def test_runner_inputs(exported: Callable[..., Any]) -> None:
    loaded, report = exported("msn_concat")
    runner = TFLiteRunner(report.path, num_threads=1)
    assert runner.input_names == ["video", "flow", "mask"] and runner.batch == 1
    assert [d["name"] for d in runner.input_details] == runner.input_names
    clips = example_inputs(loaded, batch=3, seed=5, num_frames=T, size=HW)
    with torch.no_grad():
        ref = loaded.model(*clips).numpy()
    # a batch of 3 through a batch-1 artefact; tensors or arrays; positional or by name
    out = runner(*clips)
    assert out.shape == (3, 5) and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-3
    by_name = runner(**{k: c.numpy() for k, c in zip(runner.input_names, clips, strict=True)})
    np.testing.assert_array_equal(by_name, out)
    single = runner(*(c[1] for c in clips))  # one clip without the batch axis
    np.testing.assert_allclose(single[0], out[1], atol=1e-6)
    with pytest.raises(ValueError, match=r"input 'flow' must be \(B, 2, 8, 32, 32\)"):
        runner(clips[0], clips[0], clips[2])
    with pytest.raises(TypeError, match="takes 3 inputs"):
        runner(clips[0])
    with pytest.raises(TypeError, match="missing"):
        runner(video=clips[0])
    with pytest.raises(ValueError, match="empty batch"):
        runner(*(c[:0] for c in clips))
    # a full-integer input (as the Edge TPU artefacts have): floats are quantised to it
    q = _to_input(np.array([0.5, -1.0, 10.0]), {"dtype": np.int8, "quantization": (0.05, 3)})
    assert q.dtype == np.int8 and q.tolist() == [13, -17, 127]


class _ExportSkew(nn.Module):
    """Adds 1 to its logits in eager mode only: a deliberately wrong artefact."""

    input_keys = ("video",)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, video: Tensor) -> Tensor:
        logits = self.fc(self.conv(video).mean(dim=(2, 3, 4)))
        return logits if torch.compiler.is_exporting() else logits + 1.0


def test_parity_failure_is_reported(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = _ExportSkew().eval()
    path = tmp_path / "skew.tflite"
    with pytest.raises(
        TFLiteParityError, match=r"_ExportSkew: TFLite float32 logits differ.* by 1 "
    ) as err:
        to_tflite(module, path, num_frames=4, size=(8, 8), num_random=2)
    report = err.value.report
    assert report is not None and report.checked and report.model is None
    assert report.max_abs_diff_random == pytest.approx(1.0, abs=1e-4)
    assert report.metadata["input_shapes"] == {"video": [1, 3, 4, 8, 8]}
    assert (
        report.as_dict()["op_counts"]
        == report.op_counts
        == {op: op_list(path).count(op) for op in set(op_list(path))}
    )
    # the file was written and computes the exported (skew-free) function
    clip = example_inputs(load_model(module), seed=9, num_frames=4, size=(8, 8))
    with torch.no_grad():
        eager = module(*clip).numpy()
    np.testing.assert_allclose(TFLiteRunner(path)(*clip), eager - 1.0, atol=1e-4)


def test_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="quantize must be one of"):
        to_tflite("c3d_tiny", tmp_path / "x.tflite", quantize="int4")
    with pytest.raises(FileNotFoundError, match="real_video"):
        to_tflite("c3d_tiny", tmp_path / "x.tflite", real_video=tmp_path / "none.mp4")
    monkeypatch.setitem(sys.modules, "litert_torch", None)
    with pytest.raises(ImportError, match=r"lowres-har\[tflite\]"):
        to_tflite("c3d_tiny", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()
