"""``lowres-har export onnx|tflite|edgetpu``: the command writes a checked artefact and its report,
and refuses bad invocations with a message naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lowres_har.cli import main
from lowres_har.export.onnx import OnnxRunner
from lowres_har.export.tflite import TFLiteRunner

TINY_C3D = ["--model", "c3d_tiny", "--num-frames", "8", "--size", "16", "16"]


def test_export_onnx_and_tflite_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx_path, report_path = tmp_path / "m.onnx", tmp_path / "m.json"
    assert (
        main(["export", "onnx", *TINY_C3D, "-o", str(onnx_path), "--json", str(report_path)]) == 0
    )
    report = json.loads(report_path.read_text())
    assert report["max_abs_diff_random"] <= 1e-4
    assert OnnxRunner(onnx_path).input_shapes["video"][1:] == (3, 8, 16, 16)
    assert "max |onnx - torch|" in capsys.readouterr().out

    tfl = tmp_path / "m.tflite"
    assert main(["export", "tflite", *TINY_C3D, "-o", str(tfl)]) == 0
    assert TFLiteRunner(tfl).input_shapes["video"] == (1, 3, 8, 16, 16)


def test_export_edgetpu_with_the_head_on_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--classifier cpu_mlp``: calibrated on a recipe's data, the dense head leaves the graph."""
    from lowres_har.export.edgetpu import EdgeTPURunner

    out, report_path = tmp_path / "m_int8.tflite", tmp_path / "m.json"
    conf = Path(__file__).parent / "conf" / "msn_tiny.yaml"
    kwargs = '{"kernel_size": 3, "widths": [4, 8, 8], "fc_widths": [16, 16, 16], "num_frames": 4}'
    argv = ["export", "edgetpu", "--model", "msn", "--model-kwargs", kwargs, "--size", "32", "32"]
    argv += ["--data", str(conf), "--calibration-clips", "2", "--classifier", "cpu_mlp"]
    assert main([*argv, "-o", str(out), "--json", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "classifier on the CPU_MLP" in printed and "ranges equalised" in printed
    report = json.loads(report_path.read_text())
    assert report["classifier"] == "cpu_mlp" and report["num_calibration_clips"] == 2
    assert report["equalized"] is True
    runner = EdgeTPURunner(out)
    assert [w.shape for w, _, _ in runner.host_layers] == [(16, 8), (16, 16), (16, 16), (51, 16)]


def test_export_refuses_bad_invocations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.tflite")
    assert main(["export", "edgetpu", "--model", "msn", "-o", out]) == 2
    assert "needs --data RECIPE" in capsys.readouterr().err
    assert main(["export", "onnx", "--ckpt", str(tmp_path / "missing.ckpt"), "-o", out]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["export", "onnx", "--model", "no_such_model", "-o", out]) == 2
    assert "no_such_model" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: exactly one of --ckpt / --model
        main(["export", "onnx", "-o", out])
