"""Multi-label evaluation of the TinyVIRAT recipe: the challenge's class-averaged metrics,
decision-threshold tuning (stored in checkpoints, used by test and both predict paths),
horizontal-flip TTA, K-clip max aggregation, the loss wiring and the ``answer.txt`` writer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lowres_har.callbacks import TinyActionAnswerWriter
from lowres_har.data.datasets.tinyvirat import TinyVIRATDataModule
from lowres_har.losses import AsymmetricLoss, BinaryCrossEntropyLoss
from lowres_har.multilabel import (
    aggregate_by_video,
    answer_lines,
    binarize,
    combine_tta,
    hflip_inputs,
    macro_prf,
    per_class_prf,
    tune_thresholds,
)
from lowres_har.predict import VideoPredictor
from lowres_har.tasks import VideoClassificationTask

TINY = {"model": "c3d_tiny", "model_kwargs": {"width": 8}}


@pytest.fixture(scope="module")
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("tinyvirat")


def _dm(root: Path, **kwargs: Any) -> TinyVIRATDataModule:
    kw: dict[str, Any] = {"num_workers": 0, "batch_size": 4, "num_frames": 4, "eval_clips": 2}
    kw.update(kwargs)
    return TinyVIRATDataModule(str(root), **kw)


def _task(**kwargs: Any) -> VideoClassificationTask:
    kw: dict[str, Any] = {**TINY, "num_classes": 4, "multilabel": True}
    kw.update(kwargs)
    return VideoClassificationTask(**kw)


def _trainer(tmp_path: Path, **kwargs: Any) -> L.Trainer:
    kw: dict[str, Any] = {
        "default_root_dir": tmp_path,
        "accelerator": "cpu",
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "enable_checkpointing": False,
        "num_sanity_val_steps": 0,
    }
    kw.update(kwargs)
    return L.Trainer(**kw)


# ------------------------------------------------------------------------------------ metrics
#: 4 videos × 3 classes; class 2 has no positives; two probabilities sit exactly on 0.5
PROBS = torch.tensor(
    [[0.9, 0.2, 0.6], [0.4, 0.7, 0.1], [0.8, 0.6, 0.3], [0.3, 0.5, 0.5]], dtype=torch.float64
)
TARGET = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_macro_prf_hand_computed_with_a_class_without_positives() -> None:
    # decisions p > 0.5 (0.5 itself is negative): [[1,0,1],[0,1,0],[1,1,0],[0,0,0]]
    # class 0: TP 2, FP 0, FN 1 -> P 1, R 2/3, F1 4/5
    # class 1: TP 2, FP 0, FN 0 -> P 1, R 1, F1 1 (0.5 at video 3 is not a false positive)
    # class 2: no positives, TP 0, FP 1 -> P 0, R 0 (0/0), F1 0
    scores = per_class_prf(PROBS, TARGET, 0.5)
    torch.testing.assert_close(scores["precision"], torch.tensor([1.0, 1.0, 0.0]).double())
    torch.testing.assert_close(scores["recall"], torch.tensor([2 / 3, 1.0, 0.0]).double())
    torch.testing.assert_close(scores["f1"], torch.tensor([0.8, 1.0, 0.0]).double())
    macro = macro_prf(PROBS, TARGET, 0.5)
    assert macro["precision"] == pytest.approx(2 / 3)
    assert macro["recall"] == pytest.approx(5 / 9)
    assert macro["f1"] == pytest.approx(0.6)
    # the class average of F1, not the harmonic mean of the averaged precision and recall
    p, r = macro["precision"], macro["recall"]
    assert macro["f1"] != pytest.approx(2 * p * r / (p + r))
    # per-class thresholds: class 2 at 0.7 predicts nothing, still F1 0; class 0 at 0.35
    # catches video 1 (R 1, F1 1) and video 3 (0.3) stays out
    per = per_class_prf(PROBS, TARGET, [0.35, 0.5, 0.7])
    torch.testing.assert_close(per["f1"], torch.tensor([1.0, 1.0, 0.0]).double())
    expected = [[True, False, False], [True, True, False], [True, True, False], [False] * 3]
    assert binarize(PROBS, [0.35, 0.5, 0.7]).tolist() == expected


def test_task_metrics_match_the_challenge_definition() -> None:
    """The task's torchmetrics-based f1_macro/precision/recall average every class (0 for a
    zero denominator) with strict decisions, i.e. equal :func:`macro_prf`."""
    task = _task(num_classes=3)
    metrics = task._collection("val_video")
    metrics.update(PROBS.float(), TARGET)
    out = metrics.compute()
    expected = macro_prf(PROBS, TARGET, 0.5)
    assert float(out["f1_macro"]) == pytest.approx(expected["f1"], abs=1e-6)
    assert float(out["precision"]) == pytest.approx(expected["precision"], abs=1e-6)
    assert float(out["recall"]) == pytest.approx(expected["recall"], abs=1e-6)


def test_bad_metric_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="NaN"):
        macro_prf(torch.full((2, 3), float("nan")), torch.zeros(2, 3), 0.5)
    with pytest.raises(ValueError, match="multi-hot"):
        macro_prf(PROBS, TARGET * 2, 0.5)
    with pytest.raises(ValueError, match="does not match"):
        macro_prf(PROBS, TARGET[:, :2], 0.5)
    with pytest.raises(ValueError, match="1 or 3 thresholds"):
        binarize(PROBS, [0.5, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binarize(PROBS, 1.5)


# ---------------------------------------------------------------------------------- tuning
#: class 0 is separable only at t in [0.68, 0.72) (grid: 0.70), class 1 only at [0.08, 0.12)
#: (grid: 0.10), class 2 has no positives
TUNE_PROBS = torch.tensor(
    [[0.90, 0.20, 0.40], [0.72, 0.12, 0.90], [0.68, 0.08, 0.10], [0.02, 0.03, 0.60]],
    dtype=torch.float64,
)
TUNE_TARGET = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])


def test_tune_thresholds_finds_the_known_optimum() -> None:
    per_class = tune_thresholds(TUNE_PROBS, TUNE_TARGET, mode="per_class")
    # class 2 scores F1 0 at every threshold: the tie goes to the default 0.5
    torch.testing.assert_close(per_class, torch.tensor([0.70, 0.10, 0.50]))
    assert macro_prf(TUNE_PROBS, TUNE_TARGET, per_class)["f1"] == pytest.approx(2 / 3)
    # one threshold for all: at 0.10 class 0 has one false positive (F1 4/5), class 1 is
    # perfect: (0.8 + 1 + 0) / 3 = 0.6, the best of the grid (0.70 gives 1/3, 0.05 gives 0.533)
    glob = tune_thresholds(TUNE_PROBS, TUNE_TARGET, mode="global")
    torch.testing.assert_close(glob, torch.full((3,), 0.10))
    assert macro_prf(TUNE_PROBS, TUNE_TARGET, glob)["f1"] == pytest.approx(0.6)
    grid = [round(0.05 * i, 2) for i in range(1, 20)]
    assert max(macro_prf(TUNE_PROBS, TUNE_TARGET, t)["f1"] for t in grid) == pytest.approx(0.6)
    # a custom grid, and the tie rule: closest to the default, then the smaller value
    # 0.3: (0.8 + 0 + 0) / 3 beats 0.8: (2/3 + 0 + 0) / 3
    custom = tune_thresholds(TUNE_PROBS, TUNE_TARGET, mode="global", grid=[0.8, 0.3])
    assert custom.tolist() == pytest.approx([0.3] * 3)
    tied = tune_thresholds(TUNE_PROBS, TUNE_TARGET, mode="per_class", grid=[0.4, 0.6])
    assert tied[2].item() == pytest.approx(0.4)  # F1 0 at both, equally far from 0.5
    with pytest.raises(ValueError, match="mode"):
        tune_thresholds(TUNE_PROBS, TUNE_TARGET, mode="best")
    with pytest.raises(ValueError, match="grid"):
        tune_thresholds(TUNE_PROBS, TUNE_TARGET, grid=[])


def test_validation_tunes_and_logs_the_decision_threshold() -> None:
    """The end of a validation epoch tunes ``decision_threshold`` on the video probabilities
    and reports the fixed-threshold metrics next to the tuned ones; test reuses the value."""
    task = _task(num_classes=3, tune_threshold="per_class", aggregate="max")
    logits = torch.logit(TUNE_PROBS.float())
    clips = torch.cat([logits, logits - 3])  # a second, less confident clip per video
    task.eval_probabilities = lambda inputs: (clips, clips.sigmoid())  # type: ignore[method-assign]
    batch = {
        "video": torch.zeros(8, 3, 4, 32, 32),
        "label": torch.cat([TUNE_TARGET, TUNE_TARGET]).float(),
        "video_index": torch.arange(8) % 4,
    }
    task._eval_step(batch, "val")
    res = task._eval_epoch_end("val")
    torch.testing.assert_close(task.decision_threshold, torch.tensor([0.70, 0.10, 0.50]))
    assert float(res["val/video_f1_tuned"]) == pytest.approx(2 / 3)
    assert float(res["val/video_f1_macro"]) == pytest.approx(
        macro_prf(TUNE_PROBS, TUNE_TARGET, 0.5)["f1"]
    )
    assert float(res["val/threshold"]) == pytest.approx((0.7 + 0.1 + 0.5) / 3)
    assert float(res["val/video_precision_tuned"]) == pytest.approx(2 / 3)
    # test: the stored thresholds, not re-tuned (the flipped data would tune differently)
    task._eval_step({**batch, "label": 1 - batch["label"]}, "test")
    res = task._eval_epoch_end("test")
    torch.testing.assert_close(task.decision_threshold, torch.tensor([0.70, 0.10, 0.50]))
    flipped = macro_prf(TUNE_PROBS, 1 - TUNE_TARGET, task.decision_threshold)
    assert float(res["test/video_f1_tuned"]) == pytest.approx(flipped["f1"])


def test_threshold_options_are_checked() -> None:
    with pytest.raises(ValueError, match="multilabel: true"):
        VideoClassificationTask(**TINY, tune_threshold="global")
    with pytest.raises(ValueError, match="tune_threshold"):
        _task(tune_threshold="best")
    with pytest.raises(ValueError, match="threshold must be in"):
        _task(threshold=1.5)
    with pytest.raises(ValueError, match="threshold_grid"):
        _task(tune_threshold="global", threshold_grid=[0.5, 2.0])
    with pytest.raises(ValueError, match="tta_reduce"):
        _task(tta_reduce="median")


# ------------------------------------------------------------------------------- losses
def test_loss_wiring() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    target = (torch.rand(5, 4) > 0.5).float()
    asl = _task(loss="asl", loss_kwargs={"gamma_neg": 2, "gamma_pos": 0, "clip": 0.1})
    assert isinstance(asl.criterion, AsymmetricLoss)
    assert (asl.criterion.gamma_neg, asl.criterion.gamma_pos, asl.criterion.clip) == (2, 0, 0.1)
    expected = AsymmetricLoss(gamma_neg=2, gamma_pos=0, clip=0.1)(logits, target)
    torch.testing.assert_close(asl.compute_loss(logits, target), expected)
    default_asl = _task(loss="asl").criterion
    assert isinstance(default_asl, AsymmetricLoss)
    assert (default_asl.gamma_neg, default_asl.gamma_pos, default_asl.clip) == (4, 1, 0.05)
    bce = _task()  # multi-label keeps BCE (loss "ce" is the single-label default)
    assert isinstance(bce.criterion, BinaryCrossEntropyLoss)
    bce_value = F.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(bce.compute_loss(logits, target), bce_value)
    assert not torch.allclose(expected, bce_value)
    ce = VideoClassificationTask(**TINY, num_classes=4, label_smoothing=0.2)
    label = torch.tensor([0, 3, 1, 2, 2])
    torch.testing.assert_close(
        ce.compute_loss(logits, label), F.cross_entropy(logits, label, label_smoothing=0.2)
    )
    with pytest.raises(ValueError, match="loss"):
        _task(loss="focal")
    with pytest.raises(ValueError, match="bad arguments"):
        _task(loss="asl", loss_kwargs={"gamma": 2})


# ---------------------------------------------------------------------------------- TTA
def test_hflip_tta_really_flips() -> None:
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 32, 32)
    flow = torch.randn(2, 2, 4, 8, 8)
    flipped_video, flipped_flow = hflip_inputs([video, flow], ["video", "flow"])
    torch.testing.assert_close(flipped_video[..., 0], video[..., -1])
    torch.testing.assert_close(flipped_flow[:, 0, ..., 0], -flow[:, 0, ..., -1])  # u negated
    torch.testing.assert_close(flipped_flow[:, 1, ..., 0], flow[:, 1, ..., -1])
    task = _task(tta_hflip=True).eval()
    plain = _task(tta_hflip=False).eval()
    plain.load_state_dict(task.state_dict())
    with torch.no_grad():
        logits, probs = task.eval_probabilities([video])
        p_orig = task(video).sigmoid()
        p_flip = task(video.flip(-1)).sigmoid()
        _, plain_probs = plain.eval_probabilities([video])
    assert not torch.allclose(p_orig, p_flip)  # the network is not flip-invariant
    torch.testing.assert_close(logits.sigmoid(), p_orig)  # the loss sees the clip as given
    torch.testing.assert_close(probs, torch.maximum(p_orig, p_flip))  # documented max rule
    torch.testing.assert_close(plain_probs, p_orig)
    assert not torch.allclose(probs, p_orig)
    torch.testing.assert_close(combine_tta(p_orig, p_flip, "mean"), (p_orig + p_flip) / 2)
    with torch.no_grad():
        predicted = task.predict_step({"video": video}, 0)
    torch.testing.assert_close(predicted, probs)
    with pytest.raises(ValueError, match="flow input"):
        hflip_inputs([torch.zeros(1, 3, 2, 4, 4)], ["flow"])


def test_k_clips_max_aggregation_on_the_fixture(root: Path) -> None:
    """eval_clips=2 and aggregate=max: each validation video gets the per-class max of its two
    (TTA-merged) clips, and the video metrics are computed on those 8 videos."""
    dm = _dm(root)
    dm.setup("validate")
    assert len(dm.val_dataset) == 2 * 8
    torch.manual_seed(0)
    task = _task(aggregate="max", tta_hflip=True).eval()
    clip_probs, clip_index, labels = [], [], []
    with torch.no_grad():
        for batch in dm.val_dataloader():
            task._eval_step(batch, "val")
            clip_probs.append(task.eval_probabilities([batch["video"]])[1])
            clip_index.append(batch["video_index"])
            labels.append(batch["label"])
    probs, index = torch.cat(clip_probs), torch.cat(clip_index)
    assert index.tolist() == [i // 2 for i in range(16)]  # K=2 clips of each video, in order
    videos, expected = aggregate_by_video(probs, index, "max")
    manual = torch.stack([probs[index == v].max(0).values for v in range(8)])
    torch.testing.assert_close(expected, manual)
    got, target, ids = task._aggregator("val").compute()
    assert ids.tolist() == videos.tolist() == list(range(8))
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(target, torch.cat(labels)[::2])
    res = task._eval_epoch_end("val")
    ref = macro_prf(expected.double(), target, 0.5)
    assert float(res["val/video_f1_macro"]) == pytest.approx(ref["f1"], abs=1e-6)
    assert float(res["val/video_recall"]) == pytest.approx(ref["recall"], abs=1e-6)


# ------------------------------------------------------------------------------ answer.txt
def test_answer_lines_exact_format(tmp_path: Path) -> None:
    decisions = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]])
    assert answer_lines(["00003", "00000", 7], decisions) == [
        "00000 0 1 1 0",
        "00003 1 0 0 1",
        "00007 0 0 0 0",
    ]
    with pytest.raises(ValueError, match="numeric clip ids"):
        answer_lines(["a1"], decisions[:1])
    with pytest.raises(ValueError, match="00003 appears more than once"):
        answer_lines(["00003", "3"], decisions[:2])
    with pytest.raises(ValueError, match="binary"):
        answer_lines(["1"], torch.tensor([[2, 0]]))
    with pytest.raises(ValueError, match="for 2 ids"):
        answer_lines(["1", "2"], decisions)


def _fake_run(dm: TinyVIRATDataModule, thresholds: list[float]) -> tuple[Any, Any]:
    trainer = SimpleNamespace(datamodule=dm)
    module = SimpleNamespace(
        hparams={"multilabel": True, "threshold": 0.5},
        decision_threshold=torch.tensor(thresholds),
    )
    return trainer, module


def test_answer_writer_aggregates_clips_and_uses_the_thresholds(root: Path, tmp_path: Path) -> None:
    dm = _dm(root, test_split="test")
    ids = dm.test_ids
    assert ids == ["00000", "00001", "00002", "00003", "00004", "00005"]
    # two clips per video; the per-class max decides against thresholds [0.3, 0.5, 0.5, 0.9]
    first = torch.tensor(
        [
            [0.9, 0.1, 0.1, 0.1],
            [0.1, 0.6, 0.1, 0.1],
            [0.1, 0.1, 0.5, 0.1],
            [0.2, 0.1, 0.1, 0.95],
            [0.31, 0.2, 0.7, 0.1],
            [0.1, 0.1, 0.1, 0.1],
        ]
    )
    second = torch.full((6, 4), 0.05)
    second[5, 1] = 0.8  # only the second clip of video 5 sees class 1
    probs = torch.cat([first, second])
    index = torch.cat([torch.arange(6), torch.arange(6)])
    out = tmp_path / "sub" / "answer.txt"
    writer = TinyActionAnswerWriter(str(out))
    trainer, module = _fake_run(dm, [0.3, 0.5, 0.5, 0.9])
    assert writer.write(trainer, module, probs, index) == out
    assert out.read_text() == (
        "00000 1 0 0 0\n"
        "00001 0 1 0 0\n"
        "00002 0 0 0 0\n"  # 0.5 is not above 0.5
        "00003 0 0 0 1\n"
        "00004 1 0 1 0\n"
        "00005 0 1 0 0\n"
    )
    # an explicit threshold overrides the task's
    TinyActionAnswerWriter(str(out), threshold=0.05).write(trainer, module, probs, index)
    assert out.read_text().splitlines()[5] == "00005 1 1 1 1"
    # a video without any clip: an error naming it, or an all-zero line on request
    keep = index != 2
    with pytest.raises(ValueError, match="1 of 6 'test' clips have no prediction.*00002"):
        writer.write(trainer, module, probs[keep], index[keep])
    zeros = TinyActionAnswerWriter(str(out), on_missing="zeros")
    zeros.write(trainer, module, probs[keep], index[keep])
    lines = out.read_text().splitlines()
    assert len(lines) == 6 and lines[2] == "00002 0 0 0 0" and lines[4] == "00004 1 0 1 0"
    bad = SimpleNamespace(hparams={"multilabel": False})
    with pytest.raises(ValueError, match="multilabel: false"):
        writer.write(trainer, bad, probs, index)
    with pytest.raises(ValueError, match="on_missing"):
        TinyActionAnswerWriter(on_missing="skip")


def test_answer_writer_covers_videos_skipped_by_on_error(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "TinyVIRAT_V2"
    shutil.copytree(root, copy)
    (copy / "videos" / "test" / "00003.mp4").unlink()
    dm = _dm(copy, test_split="test", on_error="skip")
    assert dm.test_ids == ["00000", "00001", "00002", "00004", "00005"]
    assert dm.split_ids("test") == ["00000", "00001", "00002", "00003", "00004", "00005"]
    probs = torch.full((5, 4), 0.9)
    trainer, module = _fake_run(dm, [0.5] * 4)
    out = tmp_path / "answer.txt"
    with pytest.raises(ValueError, match="no prediction.*00003"):
        TinyActionAnswerWriter(str(out)).write(trainer, module, probs, torch.arange(5))
    TinyActionAnswerWriter(str(out), on_missing="zeros").write(
        trainer, module, probs, torch.arange(5)
    )
    assert out.read_text().splitlines() == [
        f"0000{i} " + ("0 0 0 0" if i == 3 else "1 1 1 1") for i in range(6)
    ]


# ------------------------------------------------------- checkpoint, test and both predict paths
def test_tuned_threshold_is_checkpointed_and_used_by_test_and_predict(
    root: Path, tmp_path: Path
) -> None:
    L.seed_everything(0)
    dm = _dm(root)
    task = _task(tune_threshold="per_class", aggregate="max", tta_hflip=True)
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt")
    trainer = _trainer(
        tmp_path,
        max_epochs=1,
        limit_train_batches=1,
        enable_checkpointing=True,
        callbacks=[ckpt_cb],
    )
    trainer.fit(task, datamodule=dm)
    # tuned at the end of the validation epoch on the max-aggregated, TTA-merged video probs
    task.eval()
    probs, index, labels = [], [], []
    with torch.no_grad():
        for batch in dm.val_dataloader():
            probs.append(task.eval_probabilities([batch["video"]])[1])
            index.append(batch["video_index"])
            labels.append(batch["label"])
    _, video_probs = aggregate_by_video(torch.cat(probs), torch.cat(index), "max")
    target = torch.cat(labels)[::2]
    expected = tune_thresholds(video_probs, target, mode="per_class").float()
    torch.testing.assert_close(task.decision_threshold, expected)
    saved = torch.load(ckpt_cb.best_model_path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(saved["state_dict"]["decision_threshold"], expected)
    assert saved["lowres_har"]["decision_threshold"] == pytest.approx(expected.tolist())

    # distinctive thresholds from the test videos' probabilities: class c is positive in
    # 5 - c of the 6 videos (the (c+1)-th smallest probability), then saved
    test_dm = _dm(root, test_split="test")
    test_dm.setup("predict")
    with torch.no_grad():
        clip_probs = torch.cat([task.predict_step(b, 0) for b in test_dm.predict_dataloader()])
    assert clip_probs.shape == (12, 4)
    _, test_video = aggregate_by_video(clip_probs, torch.arange(12) // 2, "max")
    ranked = test_video.sort(0).values
    custom = torch.stack([ranked[c, c] for c in range(4)])
    task.decision_threshold.copy_(custom)
    path = tmp_path / "custom.ckpt"
    trainer.save_checkpoint(path)

    loaded = VideoClassificationTask.load_from_checkpoint(path)
    torch.testing.assert_close(loaded.decision_threshold, custom)
    # test: the stored thresholds are used (and not re-tuned)
    loaded.eval()
    with torch.no_grad():
        for batch in dm.val_dataloader():
            loaded._eval_step(batch, "test")
    res = loaded._eval_epoch_end("test")
    assert float(res["test/video_f1_tuned"]) == pytest.approx(
        macro_prf(video_probs, target, custom)["f1"], abs=1e-5
    )
    torch.testing.assert_close(loaded.decision_threshold, custom)

    # Lightning predict + answer writer, resuming from the checkpoint file
    answer = tmp_path / "answer.txt"
    fresh = _task(tune_threshold="per_class", aggregate="max", tta_hflip=True)
    _trainer(tmp_path, callbacks=[TinyActionAnswerWriter(str(answer))]).predict(
        fresh, datamodule=_dm(root, test_split="test"), ckpt_path=str(path)
    )
    decisions = binarize(test_video, custom).long()
    assert answer.read_text().splitlines() == answer_lines(test_dm.test_ids, decisions)
    assert not torch.equal(decisions, binarize(test_video, 0.5).long())  # thresholds matter

    # the video predictor reads them from the checkpoint and reports them in its JSON
    predictor = VideoPredictor(path)
    torch.testing.assert_close(torch.from_numpy(predictor.thresholds).float(), custom)
    video = root / "videos" / "test" / "00001.mp4"
    pred = predictor.predict(video)
    record = pred.as_dict()
    assert record["model"]["threshold"] == pytest.approx([round(float(t), 6) for t in custom])
    assert record["model"]["tta_hflip"] is True and record["aggregate"]["method"] == "max"
    merged = pred.probs.max(axis=0)
    assert {s.index for s in pred.aggregate_labels or []} == {
        c for c in range(4) if merged[c] > float(custom[c])
    }
    json.dumps(record)  # JSON-able
    assert VideoPredictor(path, threshold=0.2).threshold == pytest.approx(0.2)


def test_checkpoint_without_decision_threshold_still_loads(tmp_path: Path) -> None:
    task = _task(threshold=0.35)
    state = task.state_dict()
    del state["decision_threshold"]  # as written before the buffer existed
    old = tmp_path / "old.ckpt"
    torch.save(
        {
            "state_dict": state,
            "hyper_parameters": dict(task.hparams),
            "pytorch-lightning_version": L.__version__,
        },
        old,
    )
    loaded = VideoClassificationTask.load_from_checkpoint(old)
    torch.testing.assert_close(loaded.decision_threshold, torch.full((4,), 0.35))
    assert VideoPredictor(old).threshold == pytest.approx(0.35)
