"""Fine-tune a quickstart checkpoint on a subset of SynthActions classes with the Python API.

Run the quickstart first; it renders SynthActions into the cache and writes the checkpoint::

    lowres-har fit --config quickstart
    python examples/finetune.py --ckpt runs/quickstart/version_0/checkpoints/last.ckpt \
        --classes walk run jump clap kick --epochs 2

The script builds c3d_tiny with one output per selected class, loads every weight of the checkpoint
except the classifier (re-initialised, because its shape changes from 12 to len(classes) outputs;
the log names each key that is not loaded), trains on the selected classes with the quickstart's
data settings (16-frame clips, stride 2, 12×16 eLR upsampled to 32×32), tests the best epoch and
prints the video-level test top-1. Logs and checkpoints go to ``runs/finetune/version_N/``.

It runs on CPU; the dataset is the one the quickstart rendered (same default seed and size), so
nothing is rendered again.
"""

from __future__ import annotations

import argparse

import lowres_har  # noqa: F401  # isort: skip  (torchvision guard: import before lightning)
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from lowres_har.data import SynthActionsDataModule
from lowres_har.data.synth import SYNTH_CLASSES
from lowres_har.tasks import VideoClassificationTask

QUICKSTART_DATA = {
    "num_frames": 16,
    "stride": 2,
    "eval_clips": 2,
    "views": {"video": {"size": [12, 16], "upsample_to": [32, 32]}},
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Fine-tune a quickstart checkpoint on a subset of SynthActions classes."
    )
    p.add_argument(
        "--ckpt",
        required=True,
        help="checkpoint to start from, e.g. runs/quickstart/version_0/checkpoints/last.ckpt",
    )
    p.add_argument(
        "--classes",
        nargs="+",
        default=["walk", "run", "jump", "clap", "kick"],
        choices=SYNTH_CLASSES,
        metavar="CLASS",
        help=f"classes to train on, in label order (from: {', '.join(SYNTH_CLASSES)})",
    )
    p.add_argument("--epochs", type=int, default=2, help="training epochs (default: 2)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per batch (default: 16)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    p.add_argument("--freeze-backbone", action="store_true", help="train only the new classifier")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    L.seed_everything(args.seed)
    classes = list(args.classes)

    data = SynthActionsDataModule(
        classes=classes,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        **QUICKSTART_DATA,
    )
    task = VideoClassificationTask(
        model="c3d_tiny",
        model_kwargs={"width": 32, "dropout": 0.3},
        num_classes=len(classes),
        class_names=classes,
        weights=args.ckpt,
        freeze_backbone=args.freeze_backbone,
        lr=args.lr,
        scheduler="cosine",
        warmup_epochs=0.5,
        min_lr=1e-5,
    )
    print(task.load_report.summary())

    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=10,
        logger=CSVLogger("runs", name="finetune"),
        callbacks=[ModelCheckpoint(monitor="val/video_top1", mode="max", save_last=True)],
    )
    trainer.fit(task, datamodule=data)
    results = trainer.test(task, datamodule=data, ckpt_path="best")

    top1 = results[0]["test/video_top1"]
    print(
        f"\nTest top-1 (video level, {len(classes)} classes): {top1:.4f} "
        f"(chance {1 / len(classes):.3f}); run folder: {trainer.log_dir}"
    )


if __name__ == "__main__":
    main()
