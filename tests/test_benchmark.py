"""Model benchmarks (``lowres_har.export.benchmark``, ``lowres-har benchmark model|msn|e2e``).

Everything runs with tiny models and short synthetic videos; no assertion is about wall-clock
speed, only about counts, consistency and shapes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import lowres_har
from lowres_har.cli import main
from lowres_har.data.io import VideoDecodeError, write_video
from lowres_har.export.benchmark import (
    BACKENDS,
    E2E_STAGES,
    MSN_STREAM_SETS,
    PIPELINE_SPLITS,
    EndToEnd,
    Latency,
    ModelBenchmark,
    MSNTable,
    _onnxruntime_model,
    _predict_pass,
    benchmark_model,
    count_flops,
    count_params,
    end_to_end,
    input_shapes,
    measure_latency,
    msn_table,
    num_threads,
)

#: A small MSN (about 10 k parameters) for fast tests: 8 frames of 16×16, 3×3×3 convolutions.
TINY_MSN = {
    "kernel_size": 3,
    "widths": [4, 8, 8],
    "fc_widths": [8],
    "num_frames": 8,
    "input_size": [16, 16],
}
#: A narrow R(2+1)D-18 reference on 4-frame 16×16 windows.
TINY_REF = {"reference_kwargs": {"width": 4}, "reference_size": (16, 16), "reference_window": 4}


def _conv_net() -> nn.Module:
    """Conv3d 2→4, kernel 3, no bias, on (2, 5, 6, 7) → (4, 3, 4, 5); then Linear 240→10."""
    return nn.Sequential(
        nn.Conv3d(2, 4, kernel_size=3, bias=False), nn.Flatten(), nn.Linear(240, 10)
    )


@pytest.fixture(scope="module")
def synthetic_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 frames of 48×64 (H×W): a bright square moving right over a textured background."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, size=(48, 64, 3), dtype=np.uint8)
    frames = np.repeat(background[None], 20, axis=0)
    for t in range(20):
        frames[t, 16:32, 2 + 2 * t : 14 + 2 * t] = (230, 200, 40)
    path = tmp_path_factory.mktemp("bench") / "square.mp4"
    return write_video(path, frames, fps=10)


# --------------------------------------------------------------------------- counting
def test_count_params_by_hand() -> None:
    net = _conv_net()
    assert count_params(net) == 4 * 2 * 27 + 240 * 10 + 10
    net[2].weight.requires_grad_(False)
    assert count_params(net, trainable_only=True) == 4 * 2 * 27 + 10


@pytest.mark.parametrize("batch", [1, 3])
def test_count_flops_by_hand(batch: int) -> None:
    net = _conv_net().train()
    x = torch.randn(batch, 2, 5, 6, 7)
    conv = 2 * (4 * 3 * 4 * 5) * (2 * 27)  # 2 FLOPs per multiply-add, per output element
    linear = 2 * 240 * 10
    assert count_flops(net, [x]) == batch * (conv + linear)
    assert net.training  # the training flag is restored


def test_msn_flops_match_the_model_card_figures() -> None:
    """The default MSN costs ~11.01 GFLOPs per 32×32×32 clip (docs/models/msn.md)."""
    model = lowres_har.create_model("msn")
    shapes = input_shapes("msn", model)
    x = [torch.zeros(1, *s) for s in shapes.values()]
    assert count_flops(model, x) / 1e9 == pytest.approx(11.01, abs=0.01)


def test_input_shapes_follow_streams_and_kwargs() -> None:
    kwargs = {"streams": ["rgb", "mask"], "num_frames": 8, "input_size": [16, 24]}
    model = lowres_har.create_model("msn", **kwargs)
    assert input_shapes("msn", model, kwargs) == {"video": (3, 8, 16, 24), "mask": (1, 8, 16, 24)}
    r2p1d = lowres_har.create_model("r2plus1d_18", width=4)
    assert input_shapes("r2plus1d_18", r2p1d) == {"video": (3, 16, 112, 112)}


# --------------------------------------------------------------------------- latency
def test_measure_latency_is_consistent() -> None:
    net = nn.Sequential(nn.Conv3d(3, 4, 3, padding=1), nn.AdaptiveAvgPool3d(1), nn.Flatten())
    x = torch.randn(2, 3, 6, 8, 8)
    before = torch.get_num_threads()
    lat = measure_latency(net, [x], warmup=1, iters=5)
    assert torch.get_num_threads() == before
    assert lat.batch == 2 and lat.frames_per_clip == 6 and lat.iters == 5
    assert 0 < lat.p50_ms <= lat.p90_ms and lat.mean_ms > 0
    assert lat.clips_per_s == pytest.approx(2 / (lat.p50_ms / 1000))
    assert lat.frames_per_s == pytest.approx(lat.clips_per_s * 6)
    assert all(math.isfinite(v) for v in (lat.p50_ms, lat.p90_ms, lat.clips_per_s))


def test_latency_from_seconds_percentiles() -> None:
    lat = Latency.from_seconds([0.004, 0.001, 0.002, 0.003, 0.010], batch=4, frames_per_clip=8)
    assert lat.p50_ms == pytest.approx(3.0)
    assert lat.mean_ms == pytest.approx(4.0)
    assert lat.p90_ms == pytest.approx(7.6)
    assert lat.clips_per_s == pytest.approx(4 / 0.003)
    with pytest.raises(ValueError, match="no timings"):
        Latency.from_seconds([], 1, 1)


def test_backends_and_bad_settings() -> None:
    assert {"torch", "onnxruntime", "tflite"} <= set(BACKENDS)
    net = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="unknown benchmark backend 'tensorrt'"):
        measure_latency(net, [torch.zeros(1, 3)], backend="tensorrt")
    with pytest.raises(ValueError, match=r"export backends take clips \(B, C, T, H, W\)"):
        measure_latency(net, [torch.zeros(1, 3)], backend="onnxruntime")
    with pytest.raises(ValueError, match="iters >= 1"):
        measure_latency(net, [torch.zeros(1, 3)], iters=0)
    with pytest.raises(ValueError, match="threads must be >= 1"), num_threads(0):
        pass


# --------------------------------------------------------------------------- model benchmarks
def test_benchmark_model_and_json_round_trip() -> None:
    result = benchmark_model("msn", TINY_MSN, (1, 2), warmup=0, iters=2, num_classes=5)
    model = lowres_har.create_model("msn", num_classes=5, **TINY_MSN)
    assert result.params == count_params(model)
    x = [torch.zeros(1, *s) for s in input_shapes("msn", model, TINY_MSN).values()]
    assert result.flops_per_clip == count_flops(model, x) > 0
    assert result.input_shapes == {
        "video": [3, 8, 16, 16],
        "flow": [2, 8, 16, 16],
        "mask": [1, 8, 16, 16],
    }
    assert [lat.batch for lat in result.latency] == [1, 2]
    assert result.at_batch(2).frames_per_s == pytest.approx(result.at_batch(2).clips_per_s * 8)
    with pytest.raises(KeyError):
        result.at_batch(32)
    back = ModelBenchmark.from_dict(json.loads(json.dumps(result.as_dict())))
    assert back == result


def test_msn_table_rows(tmp_path: Path) -> None:
    table = msn_table(batch_sizes=(1,), warmup=0, iters=1, base_kwargs=TINY_MSN)
    fusion, streams = table.group("fusion"), table.group("streams")
    assert [r.label for r in fusion] == list(lowres_har.models.msn.FUSIONS)
    assert [r.label for r in streams] == ["+".join(s) for s in MSN_STREAM_SETS]
    by_label = {r.label: r.result for r in streams}
    all_sum = next(r.result for r in fusion if r.label == "sum")
    assert by_label["rgb+flow+mask"] is all_sum  # measured once, listed twice
    # each stream adds its own branch: more streams, more parameters and FLOPs
    assert by_label["rgb"].params < by_label["rgb+flow"].params < all_sum.params
    assert by_label["rgb"].flops_per_clip < by_label["rgb+mask"].flops_per_clip
    concat = next(r.result for r in fusion if r.label == "concat")
    assert concat.params > all_sum.params  # the concatenated head is 3× wider
    for row in table.rows:
        assert row.result.at_batch(1).clips_per_s > 0
    back = MSNTable.from_dict(json.loads(json.dumps(table.as_dict())))
    assert back == table
    with pytest.raises(ValueError, match="must not set 'fusion'"):
        msn_table(base_kwargs={"fusion": "sum"})


# --------------------------------------------------------------------------- end to end
#: ``_predict_pass`` settings for TINY_MSN on the 20-frame synthetic video: two 8-frame windows.
PASS_KW: dict[str, Any] = {
    "window": 8,
    "elr_size": (12, 16),
    "input_size": (16, 16),
    "flow_method": "farneback",
}


@pytest.mark.parametrize("streams", [["rgb", "flow", "mask"], ["rgb"]])
def test_predict_pass_same_logits_with_and_without_pipeline(
    synthetic_video: Path, streams: list[str]
) -> None:
    kwargs = {**TINY_MSN, "streams": streams}
    model = lowres_har.create_model("msn", num_classes=3, **kwargs).eval()
    common = {**PASS_KW, "batch": 1}
    with num_threads(1):
        wall, seconds, ref = _predict_pass(
            synthetic_video, model, model.input_keys, pipeline=False, **common
        )
        assert ref.shape == (2, 3) and torch.isfinite(ref).all()  # 20 frames: 2 windows of 8
        assert wall > 0 and set(seconds) == set(E2E_STAGES)
        assert (seconds["flow"] > 0) == ("flow" in streams)
        for split in PIPELINE_SPLITS:
            _, _, logits = _predict_pass(
                synthetic_video, model, model.input_keys, pipeline=True, split=split, **common
            )
            assert torch.equal(logits, ref), split


def test_end_to_end_on_a_synthetic_clip(synthetic_video: Path) -> None:
    r = end_to_end(
        synthetic_video,
        model_kwargs=TINY_MSN,
        flow_method="tvl1",
        rounds=2,
        num_classes=4,
        **TINY_REF,  # type: ignore[arg-type]
    )
    assert (r.video_frames, r.height, r.width) == (20, 48, 64)
    assert (r.window, r.frames_classified) == (8, 16)
    assert r.reference_frames == 20 // 4 * 4
    for rate in (r.decode_fps, r.stream_decode_fps, r.predict_fps, r.reference_fps):
        assert rate is not None and math.isfinite(rate) and rate > 0
    assert r.predict_over_decode == pytest.approx(r.predict_fps / r.decode_fps)
    assert r.predict_over_reference == pytest.approx(r.predict_fps / r.reference_fps)
    assert r.ratio == min(r.predict_over_decode, r.predict_over_stream_decode)
    assert r.meets(0.0) and not r.meets(math.inf)
    assert list(r.stage_seconds) == list(E2E_STAGES)
    assert sum(r.stage_share.values()) == pytest.approx(1.0)
    assert all(r.stage_seconds[s] > 0 for s in E2E_STAGES)
    assert all(len(v) == 2 for v in r.round_seconds.values())
    assert r.params == count_params(lowres_har.create_model("msn", num_classes=4, **TINY_MSN))
    assert r.gflops_per_window > 0 and r.reference_gflops_per_window is not None
    assert EndToEnd.from_dict(json.loads(json.dumps(r.as_dict()))) == r


def test_end_to_end_onnxruntime_backend(synthetic_video: Path) -> None:
    """The onnxruntime model gives the eager model's logits on the same windows."""
    model = lowres_har.create_model("msn", num_classes=3, **TINY_MSN).eval()
    shapes = {k: (c, 8, 16, 16) for k, c in zip(model.input_keys, (3, 2, 1), strict=True)}
    common = {**PASS_KW, "batch": 2, "pipeline": False}
    with num_threads(1):
        ort_model = _onnxruntime_model(model, shapes, 1)
        _, _, ref = _predict_pass(synthetic_video, model, model.input_keys, **common)
        _, seconds, got = _predict_pass(synthetic_video, ort_model, model.input_keys, **common)
    assert got.shape == ref.shape == (2, 3) and seconds["model"] > 0
    assert (got - ref).abs().max() < 1e-4
    assert not torch.equal(got[0], got[1])  # two different windows, not one repeated output
    r = end_to_end(
        synthetic_video,
        model_kwargs=TINY_MSN,
        flow_method="farneback",
        reference=None,
        rounds=1,
        num_classes=3,
        backend="onnxruntime",
    )
    assert r.backend == "onnxruntime" and r.predict_fps > 0
    assert EndToEnd.from_dict(json.loads(json.dumps(r.as_dict()))) == r


def test_end_to_end_errors(synthetic_video: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"square\.mp4: 20 frames, shorter than one 32-frame"):
        end_to_end(synthetic_video, reference=None, rounds=1)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        end_to_end(junk, model_kwargs=TINY_MSN, reference=None, rounds=1)
    model = lowres_har.create_model("msn", **TINY_MSN).eval()
    with pytest.raises(VideoDecodeError, match="junk.mp4"):  # raised in the decoder thread
        _predict_pass(
            junk,
            model,
            model.input_keys,
            window=8,
            elr_size=(12, 16),
            input_size=(16, 16),
            flow_method="farneback",
            batch=1,
            pipeline=True,
        )
    with pytest.raises(ValueError, match="split must be one of"):
        end_to_end(synthetic_video, model_kwargs=TINY_MSN, reference=None, rounds=1, split="model")
    with pytest.raises(ValueError, match="backend must be one of"):
        end_to_end(synthetic_video, model_kwargs=TINY_MSN, reference=None, backend="tensorrt")


# --------------------------------------------------------------------------- CLI
def test_cli_benchmark_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model.json"
    args = ["benchmark", "model", "--model", "msn", "--model-kwargs", json.dumps(TINY_MSN)]
    args += ["--batch-sizes", "1", "2", "--iters", "2", "--warmup", "0", "--json", str(out)]
    assert main(args) == 0
    result = ModelBenchmark.from_dict(json.loads(out.read_text()))
    assert [lat.batch for lat in result.latency] == [1, 2]
    assert result.model_kwargs == TINY_MSN
    printed = capsys.readouterr().out
    assert f"{result.params:,}" in printed and "clips/s" in printed
    bad = ["benchmark", "model", "--model", "msn", "--model-kwargs", "[1, 2]"]
    assert main(bad) == 2
    assert "must be a JSON object" in capsys.readouterr().err


def test_cli_benchmark_backends_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``lowres-har benchmark --model NAME --backend ...``: one row per backend and batch size,
    the same network (same parameter count) under each, the exported artefacts parity-checked."""
    out = tmp_path / "backends.json"
    args = ["benchmark", "--model", "msn", "--model-kwargs", json.dumps(TINY_MSN)]
    args += ["--backend", "torch", "onnxruntime", "tflite", "--batch-sizes", "1", "2"]
    args += ["--iters", "2", "--warmup", "0", "--rounds", "1", "--json", str(out)]
    assert main(args) == 0
    results = [ModelBenchmark.from_dict(r) for r in json.loads(out.read_text())["results"]]
    assert [r.backend for r in results] == ["torch", "onnxruntime", "tflite"]
    assert len({r.params for r in results}) == 1 and len({r.flops_per_clip for r in results}) == 1
    for r in results:
        assert [lat.batch for lat in r.latency] == [1, 2]
        assert all(lat.clips_per_s > 0 and lat.p90_ms >= lat.p50_ms for lat in r.latency)
    printed = capsys.readouterr().out
    assert "onnxruntime" in printed and "tflite" in printed and "× first" in printed
    assert main(["benchmark", "--model", "msn", "--backend", "tensorrt"]) == 2
    assert "unknown benchmark backend 'tensorrt'" in capsys.readouterr().err


def test_cli_benchmark_msn_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "msn.json"
    args = ["benchmark", "msn", "--quick", "--batch-sizes", "1", "--iters", "1"]
    args += ["--model-kwargs", json.dumps(TINY_MSN), "--json", str(out)]
    assert main(args) == 0
    table = MSNTable.from_dict(json.loads(out.read_text()))
    assert len(table.group("fusion")) == 5 and len(table.group("streams")) == 5
    printed = capsys.readouterr().out
    assert "per fusion" in printed and "flow+mask" in printed


def test_cli_benchmark_e2e(
    synthetic_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "e2e.json"
    args = ["benchmark", "e2e", str(synthetic_video), "--model-kwargs", json.dumps(TINY_MSN)]
    args += ["--flow-method", "farneback", "--no-pipeline", "--rounds", "1"]
    args += ["--reference-kwargs", '{"width": 4}', "--reference-size", "16", "16"]
    args += ["--reference-window", "4", "--json", str(out)]
    assert main(args) == 0
    r = EndToEnd.from_dict(json.loads(out.read_text()))
    assert not r.pipeline and r.flow_method == "farneback" and r.reference == "r2plus1d_18"
    printed = capsys.readouterr().out
    assert "decode only" in printed and "predict / decode-only" in printed
    missing = ["benchmark", "e2e", str(tmp_path / "missing.mp4"), "--reference", "none"]
    assert main(missing) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_cli_benchmark_dispatch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'nope'" in err and "e2e" in err
    assert main(["benchmark"]) == 2
    assert main(["benchmark", "--help"]) == 0
    with pytest.raises(SystemExit) as info:  # `benchmark data` is still dispatched
        main(["benchmark", "data", "--help"])
    assert info.value.code == 0
    assert "cache" in capsys.readouterr().out
