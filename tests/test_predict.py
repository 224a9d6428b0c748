"""``lowres-har predict`` on real videos: the pipeline stored in checkpoints, the rebuilt
evaluation transform, sliding windows over every real clip, the ``--model/--weights`` form,
CSV and preview outputs, bad inputs, and the LightningCLI ``predict --config`` form."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import pytest
import torch
from conftest import CONF, fit_args

from lowres_har import create_model
from lowres_har.cli import main
from lowres_har.data import SynthActionsDataModule
from lowres_har.data.io import read_video, write_video
from lowres_har.export.common import load_model
from lowres_har.predict import (
    InferencePipeline,
    VideoPredictor,
    find_videos,
    is_video_invocation,
    output_names,
    predict_video,
    predict_videos,
)
from lowres_har.tasks import VideoClassificationTask

TINY = dict(videos_per_class=3, video_frames=8, video_size=32, workers=0)
#: a short real clip (32 frames, 340×256, 30 fps) for the tests that need only one
SHORT_CLIP = "mmaction2/tests_data_rawvideo_dataset_part_0.mp4"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch/OpenCV thread: on a busy 2-core machine more threads only spin."""
    saved = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    yield
    torch.set_num_threads(saved[0])
    cv2.setNumThreads(saved[1])


@pytest.fixture(scope="module")
def c3d_ckpt(tmp_path_factory: pytest.TempPathFactory, data_home: Path) -> Path:
    """A c3d_tiny checkpoint written by a real `lowres-har fit` (ModelCheckpoint) on SynthActions."""
    out = tmp_path_factory.mktemp("c3d_fit")
    args = fit_args(
        "lowres_har.data.SynthActionsDataModule",
        data_home / "synth_actions",
        out,
        "--data.videos_per_class=3",
        "--data.video_frames=8",
        "--data.video_size=32",
        "--data.workers=0",
        "--data.stride=2",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_checkpointing=true",
    )
    assert main(args) == 0
    ckpts = sorted(out.rglob("*.ckpt"))
    assert ckpts, "fit wrote no checkpoint"
    return ckpts[-1]


def _synth_dm(data_home: Path, **kwargs: Any) -> SynthActionsDataModule:
    kw: dict[str, Any] = dict(
        root=str(data_home / "synth_actions"), num_workers=0, batch_size=4, **TINY
    )
    kw.update(kwargs)
    return SynthActionsDataModule(**kw)


@pytest.fixture(scope="module")
def msn_ckpt(tmp_path_factory: pytest.TempPathFactory, data_home: Path) -> Path:
    """A small three-stream MSN (RGB, Farneback flow, slack mask) after one training step."""
    dm = _synth_dm(
        data_home,
        num_frames=4,
        stride=2,
        views={
            "video": {"size": [12, 16], "upsample_to": [32, 32]},
            "video_lr": {"size": [32, 32]},
        },
        streams={"flow": {"view": "video", "method": "farneback"}, "mask": {"view": "video"}},
    )
    task = VideoClassificationTask(
        model="msn",
        model_kwargs={
            "kernel_size": 3,
            "widths": [4, 8, 8],
            "fc_widths": [16, 16, 16],
            "num_frames": 4,
        },
        num_classes=dm.num_classes,
        class_names=dm.class_names,
    )
    out = tmp_path_factory.mktemp("msn_fit")
    trainer = L.Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=out,
    )
    trainer.fit(task, dm)
    path = out / "msn.ckpt"
    trainer.save_checkpoint(path)
    return path


# ------------------------------------------------------------------------------- pipeline
def test_checkpoint_stores_pipeline_and_predict_rebuilds_eval_transform(
    c3d_ckpt: Path, data_home: Path, real_clips: Path
) -> None:
    ckpt = torch.load(c3d_ckpt, map_location="cpu", weights_only=True)
    dm = _synth_dm(data_home, num_frames=4, stride=2)  # the fit's data module
    stored = ckpt["lowres_har"]["pipeline"]
    assert stored == dm.inference_config()
    assert stored["views"]["video"]["size"] == [12, 16] and stored["stride"] == 2
    assert ckpt["lowres_har"]["input_keys"] == ["video"]
    predictor = VideoPredictor(c3d_ckpt)
    assert predictor.pipeline.source == "checkpoint"
    assert predictor.class_names == dm.class_names
    # the same tensor for the same clip as the data module's evaluation transform
    frames, _ = read_video(real_clips / SHORT_CLIP, num_frames=4)
    ours = predictor.transform(frames, seed=3)
    theirs = dm.make_transform(train=False)(frames, seed=3)
    assert ours.keys() == theirs.keys() == {"video"}
    assert torch.equal(ours["video"], theirs["video"])
    assert ours["video"].shape == (3, 4, 32, 32)


@pytest.mark.parametrize("streamed", [False, True], ids=["one_pass", "probe_and_chunks"])
def test_window_inputs_equal_the_transform_on_the_decoded_video(
    c3d_ckpt: Path, real_clips: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    """Decoding (in one pass, or probed and decoded in chunks as long videos are) and
    degradation in 5-frame chunks give what ``ClipTransform.from_video`` gives on
    ``read_video``'s frames, also with a short-side scale, a centre crop, blur and noise."""
    import lowres_har.predict as predict_module

    monkeypatch.setattr(predict_module, "_CHUNK_BYTES", 5 * 256 * 340 * 3)  # 5-frame chunks
    if streamed:
        monkeypatch.setattr(predict_module, "_WHOLE_VIDEO_BYTES", 0)
    pipeline = {
        "views": {
            "video": {"size": [12, 16], "upsample_to": [32, 32], "blur_sigma": 0.5, "noise": 4.0}
        },
        "num_frames": 6,
        "stride": 2,
        "window_step": 4,
        "short_side_scale": [128, 128],
        "crop_size": [120, 160],
    }
    predictor = VideoPredictor(load_model(c3d_ckpt), pipeline=pipeline)
    path = real_clips / SHORT_CLIP
    prepared = predictor.prepare(path)
    frames, _ = read_video(path)
    assert prepared.frames["video"].shape == (32, 12, 16, 3)
    windows = predictor.windows(len(prepared.frame_index))
    assert [(s, e) for _, s, e in windows] == [
        (0, 11),
        (4, 15),
        (8, 19),
        (12, 23),
        (16, 27),
        (20, 31),
        (21, 32),
    ]
    for k, (idx, _, _) in enumerate(windows):
        ours = predictor.window_inputs(prepared, idx, seed=k)
        theirs = predictor.transform.from_video(frames, idx, seed=k)
        assert torch.equal(ours["video"], theirs["video"]), k


# ------------------------------------------------------------------------------ acceptance
def test_predict_every_real_clip(
    c3d_ckpt: Path, real_clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = list(csv.DictReader((real_clips / "manifest.csv").open()))
    out = tmp_path / "preds"
    start = time.perf_counter()
    code = main(
        [
            "predict",
            str(real_clips),
            "--ckpt",
            str(c3d_ckpt),
            "-o",
            str(out),
            "--probs",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    wall = time.perf_counter() - start
    printed = capsys.readouterr()
    assert code == 0, printed.err[-2000:]
    results = {
        json.loads(p.read_text())["video"]: json.loads(p.read_text()) for p in out.glob("*.json")
    }
    assert len(results) == len(manifest) == 36
    frames = 0
    for row in manifest:
        d = results[str(real_clips / row["path"])]
        n = int(row["frames_decoded"])
        frames += n
        assert d["schema"] == "lowres-har.predict/1"
        assert d["num_frames"] == d["frames_used"] == n
        w = d["windows"]
        assert w[0]["start_frame"] == 0 and w[-1]["end_frame"] == n
        for a, b in zip(w, w[1:], strict=False):
            assert a["start_frame"] < b["start_frame"] <= a["end_frame"]  # no gap, in order
            assert a["start_s"] < b["start_s"] and a["end_s"] <= b["end_s"]
        assert all(x["end_frame"] - x["start_frame"] == min(n, d["window"]["span"]) for x in w)
        assert w[0]["start_s"] == 0.0 and w[-1]["end_s"] == pytest.approx(d["duration_s"])
        assert d["duration_s"] == pytest.approx(float(row["duration_s"]), abs=0.11)
        probs = np.asarray(d["probs"])
        assert probs.shape == (len(w), 12)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
        for x, row_p in zip(w, probs, strict=True):
            top = [s["index"] for s in x["topk"]]
            assert len(top) == 5 and top[0] == int(np.argmax(row_p))
            assert [s["prob"] for s in x["topk"]] == sorted(
                (s["prob"] for s in x["topk"]), reverse=True
            )
        agg = d["aggregate"]["topk"]
        assert agg[0]["index"] == int(np.argmax(probs.mean(axis=0)))
        assert agg[0]["prob"] == pytest.approx(float(probs.mean(axis=0).max()), abs=1e-5)
        assert agg[0]["name"] == d["pipeline"]["class_names"][agg[0]["index"]]
    assert "36 videos" in printed.out
    print(f"\nreal clips: {frames} frames in {wall:.1f} s, {frames / wall:.0f} frames/s")


def test_msn_with_flow_and_mask_on_a_real_clip(msn_ckpt: Path, real_clips: Path) -> None:
    path = real_clips / SHORT_CLIP
    predictor = VideoPredictor(msn_ckpt, batch_size=3)
    # the stored pipeline has the LR training view too; predict keeps what MSN takes
    assert set(predictor.pipeline.views) == {"video"}
    assert set(predictor.pipeline.streams) == {"flow", "mask"}
    pred = predictor.predict(path)
    assert pred.model["input_keys"] == ["video", "flow", "mask"]
    assert len(pred.windows) == 5  # 32 frames, span 7: starts 0, 7, 14, 21 and the aligned 25
    assert pred.windows[-1].end_frame == 32
    frames, _ = read_video(path)
    for k, (idx, _, _) in enumerate(predictor.windows(32)):
        inputs = predictor.transform.from_video(frames, idx, seed=k)
        assert inputs["flow"].shape == (2, 4, 32, 32) and inputs["mask"].shape == (1, 4, 32, 32)
        with torch.inference_mode():
            logits = predictor.model(*(inputs[key][None] for key in ("video", "flow", "mask")))
        np.testing.assert_allclose(pred.probs[k], logits.softmax(1)[0].numpy(), atol=1e-5)


# ------------------------------------------------------------------------ other CLI forms
def test_model_weights_form_with_csv_and_preview(tmp_path: Path, real_clips: Path) -> None:
    model = create_model("c3d_tiny", num_classes=3, width=8)
    weights = tmp_path / "c3d.pt"
    torch.save(model.state_dict(), weights)
    names = tmp_path / "names.txt"
    long = "alpha_a_class_name_much_too_long_for_the_preview_band"  # shortened there
    names.write_text(f"{long}\nbeta\ngamma\n")
    out = tmp_path / "one.json"
    args = [
        "predict",
        str(real_clips / SHORT_CLIP),
        "--model",
        "c3d_tiny",
        "--weights",
        str(weights),
        "--num-classes",
        "3",
        "--model-kwargs",
        '{"width": 8}',
        "--class-names",
        str(names),
        "--num-frames",
        "8",
        "--stride",
        "2",
        "--topk",
        "2",
        "--window-step",
        "10",
        "-o",
        str(out),
        "--csv",
        "--preview",
        "--threads",
        "1",
    ]
    assert main(args) == 0
    d = json.loads(out.read_text())
    assert d["pipeline"]["source"] == "flags"
    assert d["pipeline"]["views"] == {"video": {"size": [12, 16], "upsample_to": [32, 32]}}
    assert d["window"] == {"num_frames": 8, "stride": 2, "span": 15, "step": 10}
    assert [(w["start_frame"], w["end_frame"]) for w in d["windows"]] == [
        (0, 15),
        (10, 25),
        (17, 32),
    ]
    assert all(
        len(w["topk"]) == 2 and w["topk"][0]["name"] in (long, "beta", "gamma")
        for w in d["windows"]
    )
    assert d["model"]["source"] == str(weights)
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [int(r["start_frame"]) for r in rows] == [0, 10, 17]
    assert rows[1]["top1_name"] == d["windows"][1]["topk"][0]["name"]
    assert float(rows[2]["end_s"]) == pytest.approx(d["windows"][2]["end_s"], abs=1e-6)
    preview, meta = read_video(tmp_path / "one.preview.mp4")
    # 32 eLR frames 12×16 upscaled ×8 over a label band
    assert preview.shape[0] == 32 and preview.shape[2] == 128 and preview.shape[1] > 96
    assert meta.fps == pytest.approx(30.0)
    band = preview[:, 96 + 2 :].astype(int)
    assert band.max() > 128  # the label is burnt in
    # the same model through the library API gives the same probabilities
    loaded = load_model(create_model("c3d_tiny", num_classes=3, width=8, pretrained=str(weights)))
    again = predict_video(
        loaded, real_clips / SHORT_CLIP, num_frames=8, stride=2, window_step=10, topk=2
    )
    assert again.probs.shape == (3, 3)
    for w, row in zip(d["windows"], again.probs, strict=True):
        for s in w["topk"]:
            assert row[s["index"]] == pytest.approx(s["prob"], abs=1e-6)


def test_bad_inputs_are_reported_and_the_others_still_predicted(
    c3d_ckpt: Path, real_clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "in" / "good.mp4"
    good.parent.mkdir()
    shutil.copy(real_clips / SHORT_CLIP, good)
    junk = tmp_path / "in" / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    truncated = tmp_path / "in" / "truncated.mkv"  # breaks mid-stream
    data = (real_clips / "intel-sample-videos/asl_gestures/eat.mkv").read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    missing = tmp_path / "in" / "missing.avi"
    out = tmp_path / "out"
    base = ["--ckpt", str(c3d_ckpt), "-o", str(out), "--no-progress", "--threads", "1"]
    assert main(["predict", str(junk), str(missing), str(truncated), str(good), *base]) == 1
    err = capsys.readouterr().err
    for bad in (junk, missing, truncated):
        assert f"lowres-har predict: {bad}: " in err
    assert "no such file" in err and "looks truncated" in err and "3 failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["good.json"]
    # --allow-partial: the frames before the break
    assert main(["predict", str(truncated), *base, "--allow-partial"]) == 0
    partial = json.loads((out / "truncated.json").read_text())
    assert partial["complete"] is False and 0 < partial["num_frames"] < 47
    assert partial["windows"][-1]["end_frame"] == partial["num_frames"]
    # --fail-fast: stop at the first bad video
    shutil.rmtree(out)
    assert main(["predict", str(junk), str(good), *base, "--fail-fast"]) == 1
    assert not out.exists() or not list(out.iterdir())
    # a glob and a folder that hold no video
    (tmp_path / "empty").mkdir()
    assert main(["predict", str(tmp_path / "empty"), str(tmp_path / "*.nothing"), *base]) == 1
    err = capsys.readouterr().err
    assert "no video files" in err and "matches no video" in err
    # bad options exit 2 with a message
    assert main(["predict", str(good), "--model", "c3d_tiny"]) == 2
    assert "--weights" in capsys.readouterr().err
    assert main(["predict", str(good), "--ckpt", str(c3d_ckpt), "--size", "64", "64"]) == 2
    assert "only apply when the pipeline is built from options" in capsys.readouterr().err
    assert main(["predict", str(good), "--ckpt", str(c3d_ckpt), "--device", "nosuch"]) == 2
    assert "unknown device 'nosuch'" in capsys.readouterr().err
    assert main(["predict", str(good), "--ckpt", str(c3d_ckpt), "--csv"]) == 2
    assert "--csv and --preview need --output" in capsys.readouterr().err


def test_lightning_predict_with_config_is_still_reached(tiny_synth: Path, tmp_path: Path) -> None:
    args = [
        "predict",
        "--config",
        str(CONF / "synth_tiny.yaml"),
        "--model.init_args.model=c3d_tiny",
        "--model.init_args.model_kwargs={width: 8}",
        "--trainer.limit_predict_batches=1",
        f"--trainer.default_root_dir={tmp_path}",
    ]
    assert not is_video_invocation(args[1:])
    assert main(args) == 0


def test_which_predict_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert is_video_invocation(["clip.mp4", "--ckpt", "x.ckpt"])
    assert is_video_invocation(["--ckpt=x.ckpt", "clip.mp4"])
    assert is_video_invocation(["--model", "r3d_18", "--weights", "w.pt", "v.mp4"])
    assert is_video_invocation(["--help"]) and is_video_invocation([])
    assert not is_video_invocation(["-c", "quickstart"])
    assert not is_video_invocation(["--config=quickstart", "--ckpt_path", "x.ckpt"])
    assert not is_video_invocation(["--model=lowres_har.tasks.VideoClassificationTask"])
    assert not is_video_invocation(["--config", "quickstart", "--help"])
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--ckpt" in text and "--weights" in text and "--config FILE" in text
    assert "--window-step" in text and "--preview" in text


# ---------------------------------------------------------------------- library behaviour
def test_find_videos_and_output_names(tmp_path: Path) -> None:
    clip = np.zeros((3, 16, 16, 3), np.uint8)
    write_video(tmp_path / "a" / "x.mp4", clip, fps=5)
    write_video(tmp_path / "a" / "x.avi", clip, fps=5, codec="mjpeg")
    write_video(tmp_path / "b" / "deep" / "x.mp4", clip, fps=5)
    frames = tmp_path / "b" / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"img{i}.png"), clip[i])
    (tmp_path / "a" / "notes.txt").write_text("not a video")
    videos, failures = find_videos([tmp_path, str(tmp_path / "a" / "*.mp4")])
    rel = [str(v.relative_to(tmp_path)) for v in videos]
    assert rel == ["a/x.avi", "a/x.mp4", "b/deep/x.mp4", "b/frames"]  # each once
    assert failures == {}
    assert output_names(videos) == ["x.avi", "a__x.mp4", "deep__x.mp4", "frames"]
    assert output_names(["p/q.mp4", "p/q.mp4"]) == ["q", "q-2"]  # the same path twice
    _, failures = find_videos([tmp_path / "nope.mp4"])
    assert "no such file" in failures[str(tmp_path / "nope.mp4")]


def test_frame_folder_resampling_and_multilabel(
    c3d_ckpt: Path, tiny_synth: Path, real_clips: Path, tmp_path: Path
) -> None:
    src = next(iter(sorted((tiny_synth / "videos").rglob("*.mp4"))))
    frames, _ = read_video(src)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    predictor = VideoPredictor(c3d_ckpt, folder_fps=8.0)
    by_folder = predictor.predict(folder)
    assert by_folder.num_frames == 8 and by_folder.fps == 8.0
    assert [(w.start_s, w.end_s) for w in by_folder.windows] == [(0.0, 7 / 8), (1 / 8, 1.0)]
    # the folder's PNGs are the decoded video's frames: same probabilities as the video file
    np.testing.assert_allclose(by_folder.probs, predictor.predict(src).probs, atol=1e-6)
    # untimed folder: frame numbers only
    untimed = VideoPredictor(c3d_ckpt).predict(folder)
    assert untimed.windows[0].start_s is None and untimed.duration_s is None
    # resampling a 30 fps clip to 10 fps: a third of the frames, in frame numbers of the file
    pred = predict_video(c3d_ckpt, real_clips / SHORT_CLIP, fps=10.0)
    assert pred.frames_used == 11 and pred.sample_fps == 10.0
    assert pred.windows[0].start_frame == 0 and pred.windows[-1].end_frame == 31
    assert pred.windows[-1].start_s == pytest.approx(pred.windows[-1].start_frame / 30, abs=1e-3)
    # multi-label: sigmoid probabilities and every class above the threshold
    ml = predict_video(c3d_ckpt, src, multilabel=True, threshold=0.5)
    assert not np.allclose(ml.probs.sum(axis=1), 1.0)
    for w, row in zip(ml.windows, ml.probs, strict=True):
        assert w.labels is not None
        assert {s.index for s in w.labels} == set(np.flatnonzero(row > 0.5).tolist())
    assert "labels" in ml.as_dict()["aggregate"]
    assert ml.as_dict()["model"]["threshold"] == 0.5
    # per-class thresholds (one per class), and max instead of mean over the windows
    n = ml.probs.shape[1]
    per_class = [0.3 + 0.4 * c / (n - 1) for c in range(n)]
    mx = predict_video(c3d_ckpt, src, multilabel=True, threshold=per_class, aggregate="max")
    assert mx.as_dict()["model"]["threshold"] == pytest.approx(per_class, abs=1e-6)
    assert mx.as_dict()["aggregate"]["method"] == "max"
    merged = mx.probs.max(axis=0)
    assert {s.index for s in mx.aggregate_labels or []} == {
        c for c in range(n) if merged[c] > per_class[c]
    }
    assert mx.aggregate_topk[0].prob == pytest.approx(float(merged.max()))
    with pytest.raises(ValueError, match="thresholds"):
        VideoPredictor(c3d_ckpt, multilabel=True, threshold=[0.5, 0.5])


def test_hflip_tta_in_the_video_predictor(c3d_ckpt: Path, tiny_synth: Path) -> None:
    src = next(iter(sorted((tiny_synth / "videos").rglob("*.mp4"))))
    plain = VideoPredictor(c3d_ckpt)
    assert not plain.tta_hflip  # the checkpoint's default
    tta = VideoPredictor(c3d_ckpt, tta_hflip=True)
    prepared = plain.prepare(src)
    a, b = plain.run(prepared), tta.run(prepared)
    windows = plain.windows(len(prepared.frame_index))
    x = torch.stack(
        [
            plain.window_inputs(prepared, idx, seed=i)["video"]
            for i, (idx, _, _) in enumerate(windows)
        ]
    )
    with torch.no_grad():
        flipped = plain.model(x.flip(-1)).softmax(dim=1).numpy()
    np.testing.assert_allclose(b.probs, np.maximum(a.probs, flipped), atol=1e-6)  # max rule
    assert not np.allclose(a.probs, b.probs)
    assert b.as_dict()["model"]["tta_hflip"] is True


def test_missing_pipeline_falls_back_to_options_with_a_warning(
    c3d_ckpt: Path, tmp_path: Path, log_capture: pytest.LogCaptureFixture
) -> None:
    ckpt = torch.load(c3d_ckpt, map_location="cpu", weights_only=True)
    del ckpt["lowres_har"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    predictor = VideoPredictor(old, num_frames=4, stride=2)
    assert "stores no inference pipeline" in log_capture.text
    assert predictor.pipeline.source == "flags"
    assert predictor.pipeline.views == {"video": {"size": [12, 16], "upsample_to": [32, 32]}}
    assert predictor.class_names[0] == "walk"  # still from the hyper-parameters
    # the rebuilt pipeline equals the stored one where it matters
    stored = InferencePipeline.from_dict(
        torch.load(c3d_ckpt, map_location="cpu", weights_only=True)["lowres_har"]["pipeline"]
    )
    clip = np.random.default_rng(0).integers(0, 255, (4, 64, 80, 3), dtype=np.uint8)
    assert torch.equal(predictor.transform(clip)["video"], stored.transform()(clip)["video"])
    with pytest.raises(ValueError, match="T×H×W"):
        VideoPredictor(
            load_model(
                "msn",
                num_frames=4,
                kernel_size=3,
                widths=[4, 8, 8],
                fc_widths=[16, 16, 16],
                fusion_pool=[1, 1, 1],  # a flattened head: fixed T×H×W
            ),
            num_frames=8,
        )


def test_predict_videos_collects_failures(c3d_ckpt: Path, real_clips: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=io.StringIO(), force_terminal=True)) as progress:
        results = predict_videos(
            c3d_ckpt, [bad, real_clips / SHORT_CLIP], num_workers=1, progress=progress
        )
    assert [p.video for p in results.predictions] == [str(real_clips / SHORT_CLIP)]
    assert list(results.failures) == [str(bad)] and str(bad) in results.failures[str(bad)]
