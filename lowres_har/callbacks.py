"""Lightning callbacks: :class:`TinyActionAnswerWriter` writes the TinyAction challenge's
``answer.txt`` from ``predict``.

On the command line (the recipe's data module must be a
:class:`~lowres_har.data.datasets.tinyvirat.TinyVIRATDataModule`)::

    lowres-har predict --config RECIPE --ckpt_path CKPT --data.test_split=test \\
        --trainer.callbacks+=lowres_har.callbacks.TinyActionAnswerWriter \\
        --trainer.callbacks.output_path=answer.txt
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from lowres_har.multilabel import aggregate_by_video, as_thresholds, binarize, write_answer

__all__ = ["TinyActionAnswerWriter"]

log = logging.getLogger("lowres_har")

_ON_MISSING = ("raise", "zeros")


class TinyActionAnswerWriter(BasePredictionWriter):
    """Write the TinyAction challenge's ``answer.txt`` at the end of ``predict``.

    Every predict batch must carry ``video_index`` ``(B,)`` (the lowres-har data modules' clip
    datasets do) and the task's ``predict_step`` must return per-clip probabilities ``(B, C)``
    (:class:`~lowres_har.tasks.VideoClassificationTask` with ``multilabel: true``; with
    ``tta_hflip`` they already merge the mirrored clip). At the end the ``K`` clips of each video
    (``eval_clips``, or the sliding windows of ``predict_windows``) are merged by ``aggregate``
    (the thesis' max), each class is decided ``probability > threshold`` with the task's
    ``decision_threshold`` (the tuned values stored in the checkpoint) unless ``threshold`` is
    given, and one line ``"<id:05d> b0 ... b{C-1}"`` per video is written in id order
    (:func:`~lowres_har.multilabel.answer_lines`).

    Ids come from the data module: ``video_ids(predict_split)`` maps ``video_index`` to the clip
    id (``test_ids`` for the default ``predict_split="test"``; pass ``test_split: test`` to the
    TinyVIRAT module for the public test set), and ``split_ids(predict_split)``, when the module
    has it, lists every id of the split file (videos that ``on_error: skip`` dropped included).

    Under DDP the clips of every rank are gathered and rank 0 writes the file.

    Args:
        output_path: the file to write (parent folders are created).
        threshold: one value or ``C`` values overriding the task's decision thresholds.
        aggregate: ``"max"`` (default) or ``"mean"`` over the clips of a video.
        on_missing: a video of the split without any prediction (dropped by ``on_error: skip``,
            a failed decode, ``limit_predict_batches``): ``"raise"`` (default; the error names
            the ids) or ``"zeros"`` (an all-zero line, counted in a warning; the challenge
            expects a line for every test clip).

    Attributes:
        last_path: the file written by the last ``predict`` (``None`` before).
    """

    def __init__(
        self,
        output_path: str = "answer.txt",
        threshold: float | list[float] | None = None,
        aggregate: str = "max",
        on_missing: str = "raise",
    ) -> None:
        super().__init__(write_interval="batch")
        if aggregate not in ("max", "mean"):
            raise ValueError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")
        if on_missing not in _ON_MISSING:
            raise ValueError(f"on_missing must be one of {_ON_MISSING}, got {on_missing!r}")
        self.output_path = Path(output_path)
        self.threshold = threshold
        self.aggregate = aggregate
        self.on_missing = on_missing
        self.last_path: Path | None = None
        self._probs: list[Tensor] = []
        self._index: list[Tensor] = []

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._probs, self._index = [], []

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        """Keep the batch's clip probabilities ``(B, C)`` and ``video_index`` ``(B,)``."""
        if not isinstance(batch, dict) or "video_index" not in batch:
            keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise KeyError(
                f"TinyActionAnswerWriter needs 'video_index' in the predict batches, got {keys}"
            )
        if not isinstance(prediction, Tensor) or prediction.ndim != 2:
            shape = tuple(prediction.shape) if isinstance(prediction, Tensor) else prediction
            raise ValueError(
                f"TinyActionAnswerWriter needs per-clip probabilities (B, C) from predict_step, "
                f"got {shape!r}"
            )
        self._probs.append(prediction.detach().float().cpu())
        self._index.append(batch["video_index"].detach().long().reshape(-1).cpu())

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Aggregate, decide and write ``output_path`` (rank 0)."""
        if not self._probs:
            raise RuntimeError("TinyActionAnswerWriter: predict produced no batches")
        probs, index = torch.cat(self._probs), torch.cat(self._index)
        self._probs, self._index = [], []
        if trainer.world_size > 1:
            probs, index = _gather(pl_module, probs, index)
        if not trainer.is_global_zero:
            return
        self.last_path = self.write(trainer, pl_module, probs, index)

    def thresholds(self, pl_module: L.LightningModule, num_classes: int) -> Tensor:
        """The decision thresholds ``(C,)``: ``threshold`` if given, else the task's
        ``decision_threshold`` buffer, else its ``threshold`` hyper-parameter."""
        hparams = getattr(pl_module, "hparams", {}) or {}
        if "multilabel" in hparams and not hparams["multilabel"]:
            raise ValueError(
                "TinyActionAnswerWriter writes multi-label decisions: the task has "
                "multilabel: false"
            )
        if self.threshold is not None:
            return as_thresholds(self.threshold, num_classes)
        stored = getattr(pl_module, "decision_threshold", None)
        if isinstance(stored, Tensor):
            return as_thresholds(stored, num_classes)
        return as_thresholds(float(hparams.get("threshold", 0.5)), num_classes)

    def write(
        self, trainer: L.Trainer, pl_module: L.LightningModule, probs: Tensor, index: Tensor
    ) -> Path:
        """Write the answer file from clip probabilities ``(M, C)`` and their video indices
        ``(M,)``; returns the path."""
        datamodule = trainer.datamodule  # type: ignore[attr-defined]
        split = getattr(datamodule, "predict_split", "test")
        if callable(getattr(datamodule, "video_ids", None)):
            ids = list(datamodule.video_ids(split))
        elif getattr(datamodule, "test_ids", None) is not None:
            ids = list(datamodule.test_ids)
        else:
            raise ValueError(
                "TinyActionAnswerWriter takes clip ids from the data module (video_ids(split) or "
                f"test_ids, e.g. TinyVIRATDataModule); {type(datamodule).__name__} has neither"
            )
        all_ids = ids
        if callable(getattr(datamodule, "split_ids", None)):
            all_ids = list(datamodule.split_ids(split))
        videos, video_probs = aggregate_by_video(probs, index, self.aggregate)
        if videos.numel() and (int(videos.min()) < 0 or int(videos.max()) >= len(ids)):
            raise ValueError(
                f"video_index {int(videos.max())} out of range: the {split!r} split has "
                f"{len(ids)} ids"
            )
        num_classes = video_probs.shape[1]
        t = self.thresholds(pl_module, num_classes)
        decided = binarize(video_probs, t).to(torch.int64)
        rows = {ids[int(v)]: decided[i] for i, v in enumerate(videos.tolist())}
        missing = [i for i in all_ids if i not in rows]
        if missing:
            msg = (
                f"{len(missing)} of {len(all_ids)} {split!r} clips have no prediction "
                f"(first: {', '.join(missing[:5])})"
            )
            if self.on_missing == "raise":
                raise ValueError(
                    msg + "; run predict over the whole split, or pass on_missing: zeros to "
                    "write all-zero lines for them"
                )
            log.warning("%s: written as all-zero lines (on_missing: zeros)", msg)
        out_ids = list(rows) + missing
        zeros = torch.zeros(num_classes, dtype=torch.int64)
        table = torch.stack([rows.get(i, zeros) for i in out_ids])
        path = write_answer(self.output_path, out_ids, table)
        log.info(
            "wrote %s: %d clips, %d classes, thresholds %s",
            path,
            len(out_ids),
            num_classes,
            _describe(t),
        )
        return path


def _describe(t: Tensor) -> str:
    values = [round(float(v), 4) for v in t]
    return str(values[0]) if all(v == values[0] for v in values) else str(values)


def _gather(pl_module: L.LightningModule, probs: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Concatenate every rank's clips (ranks may hold different numbers of them)."""
    device = pl_module.device

    def gather(x: Tensor) -> Tensor:
        return cast(Tensor, pl_module.all_gather(x))

    counts = gather(torch.tensor([probs.shape[0]], device=device)).reshape(-1)
    pad = int(counts.max()) - probs.shape[0]
    p = torch.cat([probs, probs.new_zeros((pad, probs.shape[1]))]).to(device)
    i = torch.cat([index, index.new_full((pad,), -1)]).to(device)
    all_p = gather(p).reshape(-1, probs.shape[1]).cpu()
    all_i = gather(i).reshape(-1).cpu()
    keep = all_i >= 0
    return all_p[keep], all_i[keep]
