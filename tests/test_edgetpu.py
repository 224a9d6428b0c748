"""Edge TPU export: full-int8 streaming TFLite, the checker, the frame-by-frame runtime.

A hand-written streaming toy (one Conv2d over [2-frame ring buffer + current frame], a gated
running-max accumulator, a Linear head) exercises the pipeline without the streaming rewrite;
a small MSN goes through the real :func:`~lowres_har.export.streaming.to_streaming`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The tflite extra is part of the test extra: a missing package fails here, it is not skipped.
import ai_edge_litert  # noqa: E402, F401
import litert_torch  # noqa: E402, F401
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lowres_har.export.edgetpu import (  # noqa: E402
    EDGETPU_SUPPORTED_OPS,
    EdgeTPUCheckError,
    EdgeTPURunner,
    check_edgetpu,
    evaluate_edgetpu,
    int8_agreement,
    read_description,
    sidecar_path,
    streaming_parity,
    to_edgetpu,
)

T, H, W, CLASSES = 6, 12, 12, 5


# --------------------------------------------------------------------------- toy models
class ToyClip(nn.Module):
    """Clip model: causal Conv3d (3×3×3, 2 zero frames in front) → ReLU → global max → Linear."""

    input_keys = ("video",)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=(0, 1, 1))
        self.fc = nn.Linear(8, CLASSES)

    @property
    def num_classes(self) -> int:
        return CLASSES

    def forward(self, video: Tensor) -> Tensor:
        x = F.pad(video, (0, 0, 0, 0, 2, 0))
        return self.fc(torch.relu(self.conv(x)).amax(dim=(2, 3, 4)))


class ToyStreaming(nn.Module):
    """The StreamingModel interface by hand: ring state (1, 6, H, W), max state (1, 8), 1 gate.

    ``num_steps = T + 1``; the gate is 0 on the flush step, so the zero frame never counts.
    """

    input_keys = ("video",)

    def __init__(self, clip: ToyClip) -> None:
        super().__init__()
        self.frame_shapes = {"video": (3, H, W)}
        self.state_shapes = [(1, 6, H, W), (1, 8)]
        self.num_gates = 1
        self.num_frames = T
        self.num_steps = T + 1
        self.num_classes = CLASSES
        schedule = torch.ones(self.num_steps, 1)
        schedule[T:] = 0
        self.register_buffer("schedule", schedule)
        self.conv = nn.Conv2d(9, 8, 3, padding=1)
        with torch.no_grad():  # taps (t-2, t-1, t) stacked along channels, like the ring
            self.conv.weight.copy_(clip.conv.weight.permute(0, 2, 1, 3, 4).reshape(8, 9, 3, 3))
            self.conv.bias.copy_(clip.conv.bias)
        self.head = clip.fc

    def init_states(self, batch: int = 1) -> list[Tensor]:
        return [torch.zeros((batch, *s[1:])) for s in self.state_shapes]

    def forward(
        self, frame: Tensor, gates: Tensor, ring: Tensor, acc: Tensor
    ) -> tuple[Tensor, ...]:
        feat = torch.relu(self.conv(torch.cat([ring, frame], dim=1))).amax(dim=(2, 3))
        new_acc = torch.maximum(acc, feat * gates[:, 0:1])
        return self.head(new_acc), torch.cat([ring[:, 3:], frame], dim=1), new_acc

    def run_clip(self, clip: Tensor) -> Tensor:
        states = self.init_states(clip.shape[0])
        logits = torch.zeros(clip.shape[0], CLASSES)
        for s in range(self.num_steps):
            f = clip[:, :, s] if s < clip.shape[2] else torch.zeros_like(clip[:, :, 0])
            logits, *states = self(f, self.schedule[s : s + 1], *states)
        return logits


class ClipsDataModule:
    """Minimal data module: val/test dataloaders of ``{"video", "label"}`` dicts."""

    def __init__(self, n: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.items = [
            {"video": torch.randn(3, T, H, W, generator=gen), "label": i % CLASSES}
            for i in range(n)
        ]
        self.stages: list[str | None] = []

    def prepare_data(self) -> None:
        pass

    def setup(self, stage: str | None = None) -> None:
        self.stages.append(stage)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.items, batch_size=4)  # type: ignore[arg-type]

    test_dataloader = val_dataloader


def _clips(n: int, seed: int) -> list[tuple[Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(1, 3, T, H, W, generator=gen),) for _ in range(n)]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    torch.manual_seed(0)
    clip = ToyClip().eval()
    streaming = ToyStreaming(clip).eval()
    out = tmp_path_factory.mktemp("toy")
    dm = ClipsDataModule(n=10, seed=1)
    report = to_edgetpu(
        clip,
        out / "toy_int8.tflite",
        streaming=streaming,
        datamodule=dm,
        num_calibration_clips=6,
        num_check_clips=3,
        num_frames=T,
        size=(H, W),
        float_path=out / "toy_float.tflite",
        progress=False,
    )
    return {"clip": clip, "streaming": streaming, "report": report, "dir": out, "dm": dm}


# --------------------------------------------------------------------------- export + checker
def test_toy_export_is_full_int8_and_passes_checker(toy: dict[str, Any]) -> None:
    report = toy["report"]
    assert report.check.ok, report.check.report()
    assert report.calibration_source == "datamodule:val"
    assert report.num_calibration_clips == 6
    # every step of every clip, plus its final states fed back once
    assert report.num_calibration_samples == 6 * (T + 2)
    assert report.streaming_max_abs_diff < 1e-5
    check = check_edgetpu(report.path)
    assert {t.dtype for t in check.tensors} <= {"INT8", "INT32"}
    assert all(t.dtype == "INT8" and t.scale for t in [*check.inputs, *check.outputs])
    assert {t.name for t in check.inputs} == {"video", "gates", "state_0", "state_1"}
    assert {t.name for t in check.outputs} == {"logits", "state_0_out", "state_1_out"}
    assert set(check.op_counts) <= EDGETPU_SUPPORTED_OPS
    assert "CONV_2D" in check.op_counts and "FULLY_CONNECTED" in check.op_counts
    # gates 0/1 are exactly representable
    gates = next(t for t in check.inputs if t.name == "gates")
    assert gates.scale is not None and gates.zero_point is not None
    steps = 1 / gates.scale  # 1.0 lands on an integer code inside the int8 range
    assert abs(steps - round(steps)) < 1e-3 and round(steps) + gates.zero_point <= 127


def test_checker_fails_on_float_tflite(toy: dict[str, Any]) -> None:
    result = check_edgetpu(toy["report"].float_path)
    assert not result.ok
    assert len(result.problems) == 1 and "float tensor" in result.problems[0]
    assert "FLOAT32" in result.problems[0]
    with pytest.raises(EdgeTPUCheckError, match="float tensor"):
        result.raise_if_failed()


def test_checker_fails_on_conv3d_and_5d(tmp_path: Path) -> None:

    net = nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU()).eval()
    with torch.no_grad():
        content = litert_torch.convert(net, (torch.randn(1, 2, 4, 8, 8),)).model_content()
    path = tmp_path / "conv3d.tflite"
    path.write_bytes(content)
    result = check_edgetpu(path)
    assert "CONV_3D" in result.op_counts
    text = "\n".join(result.problems)
    assert "op CONV_3D" in text and "not in the Edge TPU's supported operations" in text
    assert "more than 4 dimensions" in text
    assert "float tensor" in text
    assert any(len(t.shape) == 5 for t in result.tensors)


def _flatbuffer(
    path: Path, op: str, shapes: list[list[int]], custom: str = "", dynamic: bool = False
) -> Path:
    """A one-op int8 flatbuffer (inputs, then one output) built with the TFLite schema;
    ``dynamic`` gives the first input a ``-1`` batch in its shape signature."""
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.tools import flatbuffer_utils

    model = fb.ModelT()
    model.version = 3
    model.buffers = [fb.BufferT()]
    code = fb.OperatorCodeT()
    value = getattr(fb.BuiltinOperator, op)
    code.builtinCode = value
    code.deprecatedBuiltinCode = min(value, 127)
    if custom:
        code.customCode = custom.encode()
    model.operatorCodes = [code]
    sub = fb.SubGraphT()
    sub.tensors = []
    for i, shape in enumerate(shapes):
        t = fb.TensorT()
        t.name = f"t{i}".encode()
        t.shape = shape
        if dynamic and i == 0:
            t.shapeSignature = [-1, *shape[1:]]
        t.type = fb.TensorType.INT8
        t.buffer = 0
        q = fb.QuantizationParametersT()
        q.scale, q.zeroPoint = [0.1], [0]
        t.quantization = q
        sub.tensors.append(t)
    operator = fb.OperatorT()
    operator.opcodeIndex = 0
    operator.inputs = list(range(len(shapes) - 1))
    operator.outputs = [len(shapes) - 1]
    sub.operators = [operator]
    sub.inputs = operator.inputs
    sub.outputs = operator.outputs
    model.subgraphs = [sub]
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return path


def test_checker_rules_one_by_one(tmp_path: Path) -> None:
    ok = check_edgetpu(_flatbuffer(tmp_path / "ok.tflite", "ADD", [[1, 4, 4, 3]] * 3))
    assert ok.ok, ok.report()
    compiled = _flatbuffer(tmp_path / "c.tflite", "CUSTOM", [[1, 8], [1, 8]], "edgetpu-custom-op")
    assert check_edgetpu(compiled).ok
    other = _flatbuffer(tmp_path / "o.tflite", "CUSTOM", [[1, 8], [1, 8]], "MyOp")
    assert any("CUSTOM:MyOp" in p for p in check_edgetpu(other).problems)
    batch = check_edgetpu(_flatbuffer(tmp_path / "b.tflite", "ADD", [[2, 4, 4, 3]] * 3))
    assert any("batch 2" in p for p in batch.problems)
    assert any("leading dimension" in p for p in batch.problems)  # the 4-D output
    five = check_edgetpu(_flatbuffer(tmp_path / "f.tflite", "ADD", [[1, 2, 4, 4, 3]] * 3))
    assert [p for p in five.problems if "more than 4 dimensions" in p]
    assert not [p for p in five.problems if "float" in p]  # int8: only the rank is wrong
    dyn = check_edgetpu(_flatbuffer(tmp_path / "d.tflite", "ADD", [[1, 8]] * 3, dynamic=True))
    assert any("dynamic shape [-1, 8]" in p for p in dyn.problems)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model!")
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        check_edgetpu(bad)


# --------------------------------------------------------------------------- sidecar + runtime
def test_sidecar_round_trip(toy: dict[str, Any], tmp_path: Path) -> None:
    report = toy["report"]
    side = json.loads(sidecar_path(report.path).read_text())
    assert report.sidecar == sidecar_path(report.path)
    assert side == read_description(report.path)
    assert side["input_keys"] == ["video"] and side["frame_shapes"] == {"video": [3, H, W]}
    assert side["num_steps"] == T + 1 and side["num_classes"] == CLASSES
    assert side["schedule"] == [[1.0]] * T + [[0.0]]
    assert [s["shape"] for s in side["states"]] == [[1, 6, H, W], [1, 8]]
    assert side["class_names"] == [f"class_{i}" for i in range(CLASSES)]
    check = check_edgetpu(report.path)
    by_name = {t.name: t for t in [*check.inputs, *check.outputs]}
    for entry in [*side["inputs"], *side["outputs"]]:
        t = by_name[entry["name"]]
        assert entry["shape"] == list(t.shape)
        assert entry["scale"] == pytest.approx(t.scale) and entry["zero_point"] == t.zero_point
    # without the sidecar the embedded metadata gives the same description and logits
    alone = tmp_path / "alone_edgetpu.tflite"
    alone.write_bytes(report.path.read_bytes())
    assert read_description(alone) == side
    clip = _clips(1, seed=5)[0]
    a = EdgeTPURunner(report.path).run_clip(*clip)
    b = EdgeTPURunner(alone).run_clip(*clip)
    np.testing.assert_array_equal(a, b)
    # a compiled file finds its source's sidecar; an explicit sidecar wins
    compiled = toy["dir"] / "toy_int8_edgetpu.tflite"
    compiled.write_bytes(report.path.read_bytes())
    assert read_description(compiled) == side
    with pytest.raises(FileNotFoundError, match="no such sidecar"):
        read_description(report.path, sidecar=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a lowres-har Edge TPU description"):
        read_description(report.path, sidecar=bad)


def test_runner_tracks_float_model(toy: dict[str, Any]) -> None:
    runner = EdgeTPURunner(toy["report"].path)
    clips = _clips(12, seed=7)
    with torch.no_grad():
        ref = np.stack([toy["clip"](*c)[0].numpy() for c in clips])
    got = np.stack([runner.run_clip(*c) for c in clips])
    assert got.shape == (12, CLASSES) and got.dtype == np.float32
    corr = np.corrcoef(ref.ravel(), got.ravel())[0, 1]
    assert corr > 0.99, corr
    spread = ref.max() - ref.min()
    assert np.abs(ref - got).max() < 0.1 * spread
    agreement = int8_agreement(runner, toy["clip"], clips)
    assert agreement == pytest.approx(float((ref.argmax(1) == got.argmax(1)).mean()))
    assert agreement >= 0.75
    # numpy (C, T, H, W) and torch (1, C, T, H, W) give the same logits, runs are repeatable
    np.testing.assert_array_equal(runner.run_clip(clips[0][0][0].numpy()), got[0])
    assert runner.step_index == T + 1
    names = [name for name, _ in runner.predict(*clips[0], top_k=2)]
    assert names[0] == f"class_{int(got[0].argmax())}"


def test_runner_rejects_bad_clips(toy: dict[str, Any], tmp_path: Path) -> None:
    runner = EdgeTPURunner(toy["report"].path)
    with pytest.raises(ValueError, match=f"has {T - 1} frames"):
        runner.run_clip(np.zeros((3, T - 1, H, W), np.float32))
    with pytest.raises(ValueError, match="must be \\(C, T, H, W\\)"):
        runner.run_clip(np.zeros((2, T, H, W), np.float32))
    nan = np.zeros((3, T, H, W), np.float32)
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        runner.run_clip(nan)
    with pytest.raises(FileNotFoundError, match="no such .tflite"):
        EdgeTPURunner(tmp_path / "nope.tflite")


def test_export_argument_errors(toy: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="classifier='cpu' needs the streaming model"):
        to_edgetpu(toy["clip"], tmp_path / "x.tflite", streaming=toy["streaming"], classifier="cpu")
    with pytest.raises(ValueError, match="classifier must be"):
        to_edgetpu(toy["clip"], tmp_path / "x.tflite", classifier="gpu")
    with pytest.raises(ValueError, match="no fully connected stack"):  # toy: conv, pool, fc
        to_edgetpu(toy["clip"], tmp_path / "x.tflite", classifier="cpu_mlp")

    class UnusedStack(nn.Module):  # a dense stack registered before fc that forward never runs
        input_keys = ("video",)
        num_classes = CLASSES

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(3, 8, 3, padding=1)
            self.mlp = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
            self.fc = nn.Linear(8, CLASSES)

        def forward(self, video: Tensor) -> Tensor:
            return self.fc(torch.relu(self.conv(video)).amax(dim=(2, 3, 4)))

    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="host layers differ from the clip model"):
        to_edgetpu(
            UnusedStack().eval(),
            tmp_path / "x.tflite",
            classifier="cpu_mlp",
            num_frames=T,
            size=(H, W),
            num_calibration_clips=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="calibration clip 'video' is"):
        to_edgetpu(
            toy["clip"],
            tmp_path / "x.tflite",
            streaming=toy["streaming"],
            calibration=[(torch.zeros(1, 3, T, H + 1, W),)],
            num_frames=T,
            size=(H, W),
        )
    assert not (tmp_path / "x.tflite").exists()


def test_parity_helpers_can_fail(toy: dict[str, Any]) -> None:
    clip, streaming = toy["clip"], toy["streaming"]
    assert streaming_parity(clip, streaming) < 1e-5
    broken = ToyStreaming(clip).eval()
    with torch.no_grad():
        broken.conv.weight[:, :3] = 0  # forget the oldest tap
    assert streaming_parity(clip, broken, _clips(2, seed=3)) > 1e-2
    # the int8 file of a different model agrees with it far less than with its own
    other = ToyClip().eval()
    runner = EdgeTPURunner(toy["report"].path)
    clips = _clips(12, seed=11)
    assert int8_agreement(runner, other, clips) < int8_agreement(runner, clip, clips)


def test_evaluate_on_existing_export(toy: dict[str, Any]) -> None:
    dm = ClipsDataModule(n=7, seed=2)
    out = evaluate_edgetpu(toy["clip"], dm, path=toy["report"].path, progress=False)
    assert out["clips"] == 7 and dm.stages[-1] == "test"
    assert 0.0 <= out["agreement"] <= 1.0 and out["float_top1"] is not None
    runner = EdgeTPURunner(toy["report"].path)
    with torch.no_grad():
        same = [
            int(toy["clip"](it["video"][None])[0].argmax())
            == int(runner.run_clip(it["video"]).argmax())
            for it in dm.items
        ]
    assert out["agreement"] == pytest.approx(sum(same) / 7)
    assert (
        evaluate_edgetpu(toy["clip"], dm, path=toy["report"].path, max_clips=3, progress=False)[
            "clips"
        ]
        == 3
    )


# --------------------------------------------------------------------------- real model
@pytest.mark.parametrize(("classifier", "fusion"), [("cpu", "sum"), ("cpu_mlp", "multilayer")])
def test_msn_small_full_int8_export(tmp_path: Path, classifier: str, fusion: str) -> None:
    """MSN through the whole export; multilayer goes through ``MSN.int8_form`` (one conv over
    concatenated channels per block), checked against the original model."""
    from lowres_har import create_model

    torch.manual_seed(0)
    model = create_model(
        "msn",
        fusion=fusion,
        num_classes=4,
        kernel_size=3,
        widths=[8, 16, 32],
        fc_widths=[16, 16, 16],
        num_frames=8,
    ).eval()
    report = to_edgetpu(
        model,
        tmp_path / "msn_int8.tflite",
        num_frames=8,
        size=(32, 32),
        num_calibration_clips=3,
        num_check_clips=3,
        progress=False,
        classifier=classifier,
        equalize=fusion == "multilayer",  # default True; the sum case runs without
    )  # check=True: raises on any checker problem
    assert report.check.ok and report.classifier == classifier
    # multilayer: ranges equalised on the calibration clips (MSN.equalize_ranges); the parity
    # below is against the original model, so the folded factors left the function unchanged
    assert report.equalized == (fusion == "multilayer")
    assert ("ranges equalised" in report.summary()) == report.equalized
    assert report.streaming_max_abs_diff < 1e-4
    assert "CONV_3D" not in report.op_counts and "CONV_2D" in report.op_counts
    assert {t.dtype for t in report.check.tensors} <= {"INT8", "INT32"}
    assert max(len(t.shape) for t in report.check.tensors) <= 4
    desc = read_description(report.path)
    assert desc["input_keys"] == ["video", "flow", "mask"] and desc["num_frames"] == 8
    # the graph ends with the host head's int8 input; the float layers run on the host
    assert [o["name"] for o in desc["outputs"]][0] == "features"
    head = desc["classifier"]
    assert head["placement"] == classifier
    layers = head["layers"]
    if classifier == "cpu":  # the final Linear only
        assert [(e["weight_shape"], e["relu"]) for e in layers] == [([4, 16], False)]
        assert "FULLY_CONNECTED" in report.op_counts  # the hidden FC layers stay in int8
        width = 16
    else:  # mlp (32 -> 16 -> 16 -> 16, each + ReLU) and fc (16 -> 4)
        shapes = [([16, 32], True), ([16, 16], True), ([16, 16], True), ([4, 16], False)]
        assert [(e["weight_shape"], e["relu"]) for e in layers] == shapes
        assert "FULLY_CONNECTED" not in report.op_counts  # no dense layer left in int8
        width = 32
    features = next(t for t in report.check.outputs if t.name == "features")
    assert features.dtype == "INT8" and features.shape == (1, width)
    runner = EdgeTPURunner(report.path)
    assert [w.shape for w, _, _ in runner.host_layers] == [tuple(e["weight_shape"]) for e in layers]
    clip = [torch.randn(1, c, 8, 32, 32) for c in (3, 2, 1)]
    with torch.no_grad():
        ref = model(*clip)[0].numpy()
    got = runner.run_clip(*[x[0] for x in clip])
    assert got.shape == (4,) and np.corrcoef(ref, got)[0, 1] > 0.9
    assert report.int8_logit_corr is not None and report.int8_logit_corr > 0.98
    assert report.int8_agreement is not None and report.int8_agreement >= 2 / 3


def test_runner_works_without_torch(toy: dict[str, Any]) -> None:
    """The module file alone (copied to a board) runs an export with numpy + ai_edge_litert."""
    import subprocess
    import sys

    import lowres_har.export.edgetpu as module

    clip = _clips(1, seed=13)[0][0]
    np.save(toy["dir"] / "clip.npy", clip[0].numpy())
    expected = EdgeTPURunner(toy["report"].path).run_clip(clip)
    code = (
        "import sys, importlib.util, numpy as np\n"
        "sys.modules['torch'] = None  # any torch import now fails\n"
        "sys.modules['lowres_har'] = None\n"
        f"spec = importlib.util.spec_from_file_location('edgetpu', {str(module.__file__)!r})\n"
        "m = sys.modules['edgetpu'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        f"r = m.EdgeTPURunner({str(toy['report'].path)!r})\n"
        f"print(' '.join(repr(float(v)) for v in r.run_clip(np.load({str(toy['dir'] / 'clip.npy')!r}))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.array([float(v) for v in done.stdout.split()], np.float32)
    np.testing.assert_array_equal(got, expected)


def test_quantize_helpers() -> None:
    from lowres_har.export.edgetpu import _dequantize, _quantize

    x = np.linspace(-3, 3, 101, dtype=np.float32)
    q = _quantize(x, np.int8, 0.02, -5)
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127  # clipped, not wrapped
    back = _dequantize(q, 0.02, -5)
    inside = (x >= (-128 + 5) * 0.02) & (x <= (127 + 5) * 0.02)
    assert np.abs(back - x)[inside].max() <= 0.01 + 1e-6
    assert _quantize(np.array([0.0, 1.0], np.float32), np.int8, 1 / 255, -128).tolist() == [
        -128,
        127,
    ]
    with pytest.raises(ValueError, match="without quantization parameters"):
        _quantize(x, np.int8, 0.0, 0)
