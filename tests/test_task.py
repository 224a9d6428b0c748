from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch

from lowres_har.data import SynthActionsDataModule
from lowres_har.tasks import VideoClassificationTask
from lowres_har.tasks.classification import VideoAggregator, lr_factor_fn


def test_video_aggregator_mean_and_max() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    target = torch.tensor([0, 1, 1, 0])
    index = torch.tensor([5, 2, 2, 5])
    agg = VideoAggregator("mean")
    agg.update(probs[:2], target[:2], index[:2])
    agg.update(probs[2:], target[2:], index[2:])
    out, tgt, ids = agg.compute()
    assert ids.tolist() == [2, 5]
    torch.testing.assert_close(out, torch.tensor([[0.25, 0.75], [0.75, 0.25]]))
    assert tgt.tolist() == [1, 0]
    mx = VideoAggregator("max")
    mx.update(probs, target, index)
    out, _, _ = mx.compute()
    torch.testing.assert_close(out, torch.tensor([[0.3, 0.8], [0.9, 0.4]]))


def test_lr_schedules() -> None:
    cos = lr_factor_fn(scheduler="cosine", epochs=10, warmup_epochs=2, floor=0.1)
    assert cos(0) == pytest.approx(0.01)
    assert cos(1) == pytest.approx(0.505)
    assert cos(2) == pytest.approx(1.0)
    assert cos(6) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cos(10) == pytest.approx(0.1)
    ms = lr_factor_fn(scheduler="multistep", epochs=10, milestones=[3, 6], gamma=0.1)
    assert [ms(e) for e in (0, 3, 5.9, 6)] == pytest.approx([1, 0.1, 0.1, 0.01])
    ex = lr_factor_fn(scheduler="exponential", epochs=10, gamma=0.5, floor=0.2)
    assert [ex(e) for e in (0, 1, 2, 5)] == pytest.approx([1, 0.5, 0.25, 0.2])
    assert lr_factor_fn(scheduler="none", epochs=3)(2) == 1.0


def _batch(n: int = 4, classes: int = 6) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "video": torch.randn(n, 3, 4, 32, 32),
        "label": torch.randint(0, classes, (n,)),
        "video_index": torch.arange(n),
    }


def test_training_step_decreases_loss() -> None:
    task = VideoClassificationTask(model="r3d_18", num_classes=6, lr=1e-3)
    batch = _batch()
    opt = torch.optim.Adam(task.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = task.compute_loss(task(batch["video"]), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert math.isfinite(losses[-1])


def test_freeze_backbone() -> None:
    task = VideoClassificationTask(model="r3d_18", num_classes=6, freeze_backbone=True)
    trainable = {n for n, p in task.model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    task.train()
    bn = task.model.layer1[0].conv1[1]
    assert isinstance(bn, torch.nn.BatchNorm3d) and not bn.training


def test_missing_batch_key_is_clear() -> None:
    task = VideoClassificationTask(model="r3d_18", num_classes=6)
    with pytest.raises(KeyError, match="video"):
        task.training_step({"flow": torch.zeros(1), "label": torch.zeros(1)}, 0)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        VideoClassificationTask(optimizer="lion")
    with pytest.raises(ValueError, match="class_names"):
        VideoClassificationTask(num_classes=3, class_names=["a"])


def test_multilabel_eval_metrics() -> None:
    task = VideoClassificationTask(model="r3d_18", num_classes=4, multilabel=True)
    batch = _batch(4, 4)
    batch["label"] = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]]).float()
    task._eval_step(batch, "val")
    results = task._eval_epoch_end("val")
    for key in (
        "val/f1_macro",
        "val/f1_micro",
        "val/precision",
        "val/recall",
        "val/mAP",
        "val/video_mAP",
    ):
        assert key in results and 0.0 <= float(results[key]) <= 1.0


@pytest.mark.usefixtures("tiny_synth")
def test_test_loop_saves_plots(tmp_path: Path) -> None:
    dm = SynthActionsDataModule(
        videos_per_class=3,
        video_frames=8,
        video_size=32,
        workers=0,
        batch_size=6,
        num_workers=0,
        num_frames=4,
        stride=2,
        eval_clips=2,
    )
    task = VideoClassificationTask(
        model="r3d_18", num_classes=dm.num_classes, class_names=dm.class_names
    )
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_checkpointing=False,
    )
    (res,) = trainer.test(task, datamodule=dm)
    n_test = len(dm.test_dataset.videos)
    assert len(dm.test_dataset) == 2 * n_test
    assert {"test/top1", "test/video_top1", "test/mean_class_acc", "test/top5"} <= set(res)
    log_dir = Path(trainer.log_dir)
    assert (log_dir / "confusion_matrix.png").stat().st_size > 1000
    assert (log_dir / "per_class_accuracy.png").stat().st_size > 1000
    probs = trainer.predict(task, datamodule=dm)
    allp = torch.cat(probs)
    assert allp.shape == (2 * n_test, dm.num_classes)
    torch.testing.assert_close(allp.sum(1), torch.ones(len(allp)))


def test_top5_is_not_merged_with_top1() -> None:
    """torchmetrics compute groups merge metrics whose states match after the first update; top-1
    and top-5 then report the same number. The first batch here is all-correct (states equal),
    the second has the true class ranked 2nd (top-1 wrong, top-5 right)."""
    task = VideoClassificationTask(model="c3d_tiny", num_classes=8)
    metrics = task._collection("val_clip")
    eye = torch.eye(8)
    metrics.update(eye[:4], torch.arange(4))
    second = torch.full((4, 8), 0.01)
    second[torch.arange(4), torch.arange(4) + 1] = 0.9
    second[torch.arange(4), torch.arange(4)] = 0.5
    metrics.update(second, torch.arange(4))
    out = metrics.compute()
    assert float(out["top1"]) == pytest.approx(0.5)
    assert float(out["top5"]) == pytest.approx(1.0)


@pytest.mark.parametrize("multilabel", [False, True])
def test_single_video_eval_epoch(multilabel: bool) -> None:
    """Two clips of one video: torchmetrics squeezes one-element results; shapes must survive."""
    task = VideoClassificationTask(model="c3d_tiny", num_classes=5, multilabel=multilabel)
    batch = _batch(2, 5)
    batch["video_index"] = torch.zeros(2, dtype=torch.long)
    if multilabel:
        batch["label"] = torch.tensor([[1, 0, 0, 1, 0]] * 2).float()
    else:
        batch["label"] = torch.tensor([3, 3])
    task._eval_step(batch, "val")
    results = task._eval_epoch_end("val")
    key = "val/video_mAP" if multilabel else "val/video_top1"
    assert key in results and 0.0 <= float(results[key]) <= 1.0


def test_train_inputs_alternate_groups() -> None:
    task = VideoClassificationTask(
        model="c3d_tiny",
        model_kwargs={"width": 8},
        num_classes=6,
        train_inputs=[{}, {"video": "video_lr"}],
        train_inputs_ratio=[2, 1],
    )
    seen: list[float] = []
    task.model.register_forward_pre_hook(lambda m, args: seen.append(float(args[0].mean())))
    batch = _batch(2, 6)
    batch["video"] = torch.zeros(2, 3, 4, 32, 32)
    batch["video_lr"] = torch.ones(2, 3, 4, 32, 32)
    for i in range(6):
        task.training_step(batch, i)
    assert seen == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert [task.train_group(i) for i in range(3)] == [0, 0, 1]
    task._eval_step(batch, "val")  # evaluation always uses the identity mapping
    assert seen[-1] == 0.0
    with pytest.raises(ValueError, match="train_inputs_ratio"):
        VideoClassificationTask(model="c3d_tiny", train_inputs=[{}], train_inputs_ratio=[1, 1])
    bad = VideoClassificationTask(model="c3d_tiny", train_inputs=[{"flow": "flow_lr"}])
    with pytest.raises(KeyError, match="none of which"):
        bad.training_step(batch, 0)
    # entries for inputs the model does not take are ignored when others apply
    mixed = VideoClassificationTask(
        model="c3d_tiny",
        model_kwargs={"width": 8},
        num_classes=6,
        train_inputs=[{"video": "video_lr", "flow": "flow_lr"}],
    )
    mixed.training_step(batch, 0)
