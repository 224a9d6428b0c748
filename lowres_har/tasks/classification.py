"""``VideoClassificationTask``: supervised single- or multi-label action recognition."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MultilabelAveragePrecision,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
)

from lowres_har.multilabel import (
    TTA_REDUCTIONS,
    TUNE_MODES,
    as_thresholds,
    combine_tta,
    hflip_inputs,
    macro_prf,
    tune_thresholds,
)
from lowres_har.registry import create_model, model_card

__all__ = ["VideoAggregator", "VideoClassificationTask"]

log = logging.getLogger("lowres_har")

_OPTIMIZERS = ("adam", "adamw", "sgd")
_SCHEDULERS = ("none", "cosine", "multistep", "exponential")
_LOSSES = ("ce", "bce", "asl")


class VideoAggregator(Metric):
    """Collects clip probabilities and merges the clips of each video (DDP-safe).

    ``update(probs (B, C), target (B,) or (B, C), video_index (B,))``; ``compute()`` returns
    ``(video_probs (V, C), video_target, video_ids (V,))`` where clips sharing a ``video_index``
    are reduced by ``mean`` or ``max``. Duplicated clips (DistributedSampler padding) only repeat
    a clip of the same video, so the reduction is unaffected for ``max`` and nearly so for ``mean``.
    """

    full_state_update = False
    probs: list[Tensor]
    target: list[Tensor]
    index: list[Tensor]

    def __init__(self, reduce: str = "mean") -> None:
        super().__init__()
        if reduce not in ("mean", "max"):
            raise ValueError(f"aggregate must be 'mean' or 'max', got {reduce!r}")
        self.reduce = reduce
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")

    def update(self, probs: Tensor, target: Tensor, video_index: Tensor) -> None:  # type: ignore[override]
        self.probs.append(probs.detach().float())
        self.target.append(target.detach())
        self.index.append(video_index.detach().long())

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:  # type: ignore[override]
        def cat(x: Any) -> Tensor:
            return torch.cat(x) if isinstance(x, list) else x

        probs, target, index = cat(self.probs), cat(self.target), cat(self.index)
        ids, inverse = torch.unique(index, return_inverse=True)
        num = ids.numel()
        out = probs.new_zeros((num, probs.shape[1]))
        if self.reduce == "mean":
            out.index_add_(0, inverse, probs)
            counts = torch.bincount(inverse, minlength=num).clamp_min(1).unsqueeze(1)
            out = out / counts
        else:
            index2d = inverse.unsqueeze(1).expand_as(probs)
            out = out.scatter_reduce(0, index2d, probs, "amax", include_self=False)
        first = torch.full((num,), probs.shape[0], dtype=torch.long, device=probs.device)
        positions = torch.arange(probs.shape[0], device=probs.device)
        first = first.scatter_reduce(0, inverse, positions, "amin")
        return out, target[first], ids


class VideoClassificationTask(L.LightningModule):
    """Train, evaluate and predict a registered video classifier.

    Batches are dictionaries (see the design guide): the model's ``input_keys`` (e.g. ``video``
    ``(B, 3, T, H, W)``), ``label`` (``(B,)`` int64, or ``(B, C)`` multi-hot float when
    ``multilabel``) and, for validation/test, ``video_index`` ``(B,)`` to merge several clips of
    one video. Logged metrics: ``{stage}/loss``, clip-level ``{stage}/top1``, ``top5`` (more than
    5 classes), ``mean_class_acc`` and their ``{stage}/video_*`` counterparts; multi-label:
    ``f1_macro``, ``f1_micro``, ``precision``, ``recall`` (at the fixed ``threshold``) and
    ``mAP``, and with ``tune_threshold`` also ``{stage}/video_f1_tuned``,
    ``video_precision_tuned``, ``video_recall_tuned`` (at the decision thresholds) and
    ``{stage}/threshold`` (their mean). ``f1_macro``, ``precision`` and ``recall`` are the
    TinyAction challenge's class averages (every class counts, 0 for a zero denominator; see
    :mod:`lowres_har.multilabel`).

    Multi-label decisions use the *decision thresholds*, a ``(num_classes,)`` buffer
    ``decision_threshold`` saved in every checkpoint and restored with it (``threshold`` until
    tuned). With ``tune_threshold`` the buffer is re-tuned at the end of every validation epoch
    on the video-level validation probabilities (after K-clip aggregation and TTA) to maximise
    the class-averaged F1 (:func:`~lowres_har.multilabel.tune_thresholds`), so the checkpoint of
    an epoch carries the thresholds tuned on that epoch's predictions. ``test`` and ``predict``
    (the ``answer.txt`` writer, ``lowres-har predict``) use the stored values unchanged. The
    ``val/*_tuned`` metrics are measured on the very videos the thresholds were tuned on
    (optimistic); ``test/*_tuned`` is a held-out figure only when the test split is not the
    validation split (TinyVIRAT-v2 tests on its validation split by default).

    Args:
        model: registered model name (``lowres-har models`` lists them).
        model_kwargs: architecture options passed to ``create_model``.
        num_classes: classifier outputs.
        multilabel: multi-hot labels, sigmoid outputs, BCE loss (unless ``loss="asl"``) and
            multi-label metrics.
        loss: ``"ce"`` (cross-entropy; multi-label tasks use ``"bce"`` instead), ``"bce"``
            (binary cross-entropy on multi-hot labels, or one-hot of single labels) or
            ``"asl"`` (:class:`~lowres_har.losses.AsymmetricLoss`, the thesis' multi-label
            loss), built by :func:`~lowres_har.losses.build_loss`.
        loss_kwargs: extra arguments of the loss, e.g. ``{gamma_neg: 4, gamma_pos: 1, clip:
            0.05}`` for ``"asl"``.
        label_smoothing: cross-entropy label smoothing (``"ce"`` only).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: peak learning rate.
        weight_decay: L2 (adam, sgd) or decoupled (adamw) weight decay.
        momentum: SGD momentum (Nesterov is not used).
        scheduler: ``"none"``, ``"cosine"``, ``"multistep"`` or ``"exponential"``, stepped every
            batch in units of epochs.
        min_lr: the floor the schedule never goes below (cosine ends there).
        warmup_epochs: linear warm-up from ``lr / 100`` to ``lr`` over this many epochs
            (fractions allowed).
        milestones: epochs at which ``multistep`` multiplies the lr by ``gamma``.
        gamma: ``multistep`` factor, or per-epoch ``exponential`` decay factor.
        weights: checkpoint to start from (a lowres-har ``.ckpt``, a state dict or
            ``.safetensors``); the classifier is re-initialised when its shape differs and every
            key not loaded is logged.
        freeze_backbone: train only the classifier (BatchNorm statistics frozen too).
        aggregate: how clips of one video are merged at val/test time: ``"mean"`` or ``"max"`` of
            probabilities (the thesis' K-clip TTA uses ``"max"``).
        tta_hflip: test-time augmentation at val/test/predict: each clip is also classified
            mirrored left-right (:func:`~lowres_har.multilabel.hflip_inputs`) and the two
            probability vectors are merged by ``tta_reduce`` before clip aggregation. The loss
            and nothing else uses the unflipped clip alone.
        tta_reduce: ``"max"`` (per class, the thesis' rule) or ``"mean"``.
        class_names: names for plots and predictions (defaults to ``class_0`` ...).
        threshold: multi-label decision threshold on sigmoid probabilities, in ``[0, 1]``: a
            class is present iff its probability is greater. The ``f1_macro``, ``precision``
            and ``recall`` metrics always use it; it starts ``decision_threshold``.
        tune_threshold: ``"none"``, ``"global"`` (one tuned value for every class) or
            ``"per_class"`` (multi-label only).
        threshold_grid: candidate thresholds of the tuning (default 0.05, 0.10, ..., 0.95).
        train_inputs: alternating input groups for training (MSN's LR/eLR alternation): a list
            of ``{model input key: batch key}`` maps, e.g. ``[{}, {video: video_lr, flow:
            flow_lr, mask: mask_lr}]`` (``{}`` is the identity). Validation, test and predict
            always use the identity (the eLR inputs). ``None``: no alternation.
        train_inputs_ratio: batches per group in each cycle, e.g. ``[1, 1]`` alternates
            eLR and LR batches, ``[3, 1]`` gives three eLR batches per LR batch (default: one
            each).
    """

    def __init__(
        self,
        model: str = "r3d_18",
        model_kwargs: dict[str, Any] | None = None,
        num_classes: int = 12,
        multilabel: bool = False,
        loss: str = "ce",
        loss_kwargs: dict[str, Any] | None = None,
        label_smoothing: float = 0.0,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        scheduler: str = "cosine",
        min_lr: float = 0.0,
        warmup_epochs: float = 0.0,
        milestones: list[int] | None = None,
        gamma: float = 0.1,
        weights: str | None = None,
        freeze_backbone: bool = False,
        aggregate: str = "mean",
        tta_hflip: bool = False,
        tta_reduce: str = "max",
        class_names: list[str] | None = None,
        threshold: float = 0.5,
        tune_threshold: str = "none",
        threshold_grid: list[float] | None = None,
        train_inputs: list[dict[str, str]] | None = None,
        train_inputs_ratio: list[int] | None = None,
    ) -> None:
        super().__init__()
        if train_inputs is not None:
            ratio = train_inputs_ratio or [1] * len(train_inputs)
            if len(ratio) != len(train_inputs) or min(ratio) < 1:
                raise ValueError(
                    f"train_inputs_ratio must give a count >= 1 per train_inputs group, got "
                    f"{train_inputs_ratio} for {len(train_inputs)} groups"
                )
            self._cycle = [g for g, n in enumerate(ratio) for _ in range(n)]
        elif train_inputs_ratio is not None:
            raise ValueError("train_inputs_ratio needs train_inputs")
        for value, allowed, what in (
            (optimizer, _OPTIMIZERS, "optimizer"),
            (scheduler, _SCHEDULERS, "scheduler"),
            (loss, _LOSSES, "loss"),
            (aggregate, ("mean", "max"), "aggregate"),
            (tta_reduce, TTA_REDUCTIONS, "tta_reduce"),
            (tune_threshold, TUNE_MODES, "tune_threshold"),
        ):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if tune_threshold != "none" and not multilabel:
            raise ValueError(
                f"tune_threshold={tune_threshold!r} tunes multi-label decision thresholds: set "
                "multilabel: true (or tune_threshold: none)"
            )
        if threshold_grid is not None and (
            not threshold_grid or not all(0.0 <= float(v) <= 1.0 for v in threshold_grid)
        ):
            raise ValueError(f"threshold_grid must be values in [0, 1], got {threshold_grid}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} entries but num_classes is {num_classes}"
            )
        self.save_hyperparameters()
        self.card = model_card(model)
        self.model: nn.Module = create_model(model, num_classes=num_classes, **(model_kwargs or {}))
        from lowres_har.losses import build_loss

        #: the loss actually built: ``loss``, except ``"bce"`` for multi-label ``"ce"``
        self.loss_name = "bce" if multilabel and loss == "ce" else loss
        kwargs = dict(loss_kwargs or {})
        if self.loss_name == "ce":
            kwargs.setdefault("label_smoothing", label_smoothing)
        self.criterion: nn.Module = build_loss(self.loss_name, **kwargs)
        self.input_keys: tuple[str, ...] = tuple(self.model.input_keys)  # type: ignore[arg-type]
        self.class_names = list(class_names or [f"class_{i}" for i in range(num_classes)])
        if weights:
            from lowres_har.weights import load_pretrained

            self.load_report = load_pretrained(self.model, weights, classifier=self.card.classifier)
            # The weights now live in this task's own checkpoints: restoring one must not read
            # the (possibly moved) start file again. The run's config.yaml still records it.
            self.hparams["weights"] = None
        if freeze_backbone:
            for name, p in self.model.named_parameters():
                p.requires_grad = self._is_classifier(name)
        # ModuleDict keys must not shadow nn.Module attributes ("train"), hence the suffixes
        # Video-level metrics see data the aggregator already gathered from every rank, so they
        # must not sync again (sync_on_compute=False) or each video would count world_size times.
        self.metrics = nn.ModuleDict({"train_clip": self._metrics()})
        for stage in ("val", "test"):
            self.metrics[f"{stage}_clip"] = self._metrics()
            self.metrics[f"{stage}_video"] = self._metrics(sync_on_compute=False)
            self.metrics[f"{stage}_aggregator"] = VideoAggregator(aggregate)
        if not multilabel:
            self.confusion = MulticlassConfusionMatrix(num_classes, sync_on_compute=False)
        else:
            self.decision_threshold: Tensor
            self.register_buffer(
                "decision_threshold", as_thresholds(threshold, num_classes).float()
            )
        self._warned_no_video_index = False

    # ----------------------------------------------------------------- helpers
    def _is_classifier(self, param_name: str) -> bool:
        return any(param_name == c or param_name.startswith(c + ".") for c in self.card.classifier)

    def _collection(self, key: str) -> MetricCollection:
        return cast(MetricCollection, self.metrics[key])

    def _aggregator(self, stage: str) -> VideoAggregator:
        return cast(VideoAggregator, self.metrics[f"{stage}_aggregator"])

    def _metrics(self, sync_on_compute: bool = True) -> MetricCollection:
        n = self.hparams["num_classes"]
        kw: dict[str, Any] = {"sync_on_compute": sync_on_compute}
        if self.hparams["multilabel"]:
            t = self.hparams["threshold"]
            return MetricCollection(
                compute_groups=False,  # grouping merges metrics whose first states match
                metrics={
                    "f1_macro": MultilabelF1Score(n, threshold=t, average="macro", **kw),
                    "f1_micro": MultilabelF1Score(n, threshold=t, average="micro", **kw),
                    "precision": MultilabelPrecision(n, threshold=t, average="macro", **kw),
                    "recall": MultilabelRecall(n, threshold=t, average="macro", **kw),
                    "mAP": MultilabelAveragePrecision(n, average="macro", **kw),
                },
            )
        metrics: dict[str, Metric | MetricCollection] = {
            "top1": MulticlassAccuracy(n, top_k=1, average="micro", **kw),
            "mean_class_acc": MulticlassAccuracy(n, top_k=1, average="macro", **kw),
        }
        if n > 5:
            metrics["top5"] = MulticlassAccuracy(n, top_k=5, average="micro", **kw)
        # compute_groups would merge top-1 and top-5 whenever their states coincide after the
        # first batch (e.g. all-correct), reporting top-1 for both from then on.
        return MetricCollection(metrics, compute_groups=False)

    def train(self, mode: bool = True) -> VideoClassificationTask:
        """Set train/eval mode; with ``freeze_backbone`` backbone BatchNorm stays in eval mode."""
        super().train(mode)
        if mode:
            self._freeze_backbone_norms()
        return self

    def _freeze_backbone_norms(self) -> None:
        """Put the backbone's BatchNorm layers in eval mode when ``freeze_backbone`` is set."""
        if not self.hparams.get("freeze_backbone"):
            return
        for name, module in self.model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not self._is_classifier(
                name
            ):
                module.eval()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Re-freeze backbone BatchNorm before every training batch: after each validation
        Lightning restores the per-module modes it recorded, which can put them back in
        training mode (their running statistics would then drift)."""
        self._freeze_backbone_norms()

    def forward(self, *inputs: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` for the tensors named by ``input_keys``."""
        return self.model(*inputs)

    def _inputs(self, batch: dict[str, Tensor], group: int | None = None) -> list[Tensor]:
        """The model's inputs from a batch; ``group`` selects a ``train_inputs`` mapping."""
        mapping: dict[str, str] = {}
        if group is not None:
            full = self.hparams["train_inputs"][group]
            # entries for inputs this model does not take are ignored (one recipe serves every
            # stream subset); a group none of whose entries apply is a mistake
            mapping = {k: v for k, v in full.items() if k in self.input_keys}
            if full and not mapping:
                raise KeyError(
                    f"train_inputs group {group} maps {sorted(full)}, none of which model "
                    f"{self.hparams['model']!r} takes (it takes {self.input_keys})"
                )
        keys = [mapping.get(k, k) for k in self.input_keys]
        missing = [k for k in keys if k not in batch]
        if missing:
            raise KeyError(
                f"model {self.hparams['model']!r} needs batch keys {keys}, "
                f"but the batch lacks {missing} (it has {sorted(batch)})"
            )
        return [batch[k] for k in keys]

    def train_group(self, batch_idx: int) -> int | None:
        """The ``train_inputs`` group used for training batch ``batch_idx`` (None: identity)."""
        if self.hparams.get("train_inputs") is None:
            return None
        return self._cycle[(self.global_step if self._trainer else batch_idx) % len(self._cycle)]

    def probabilities(self, logits: Tensor) -> Tensor:
        """Sigmoid (multi-label) or softmax probabilities ``(B, C)``."""
        return logits.sigmoid() if self.hparams["multilabel"] else logits.softmax(dim=1)

    def compute_loss(self, logits: Tensor, label: Tensor) -> Tensor:
        """The configured loss (``loss_name``: ce, bce or asl) between logits ``(B, C)`` and
        labels (``(B,)`` class indices or ``(B, C)`` multi-hot)."""
        if self.loss_name == "ce":
            return cast(Tensor, self.criterion(logits, label))
        target = label.float() if label.ndim == 2 else F.one_hot(label, logits.shape[1]).float()
        return cast(Tensor, self.criterion(logits, target))

    def eval_probabilities(self, inputs: list[Tensor]) -> tuple[Tensor, Tensor]:
        """``(logits, probs)`` of an evaluation batch: the logits ``(B, C)`` of the clips as
        given and their probabilities ``(B, C)``, merged with those of the mirrored clips when
        ``tta_hflip`` is on (:func:`~lowres_har.multilabel.combine_tta`)."""
        logits = self(*inputs)
        probs = self.probabilities(logits)
        if self.hparams.get("tta_hflip"):
            flipped = self(*hflip_inputs(inputs, self.input_keys))
            probs = combine_tta(probs, self.probabilities(flipped), self.hparams["tta_reduce"])
        return logits, probs

    def _metric_target(self, label: Tensor) -> Tensor:
        return label.long() if self.hparams["multilabel"] else label

    # ------------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits = self(*self._inputs(batch, self.train_group(batch_idx)))
        loss = self.compute_loss(logits, batch["label"])
        bs = logits.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        metrics = self._collection("train_clip")
        metrics(self.probabilities(logits.detach()), self._metric_target(batch["label"]))
        self.log_dict(
            {f"train/{k}": m for k, m in metrics.items()},
            on_step=False,
            on_epoch=True,
            batch_size=bs,
        )
        return loss

    def _eval_step(self, batch: dict[str, Tensor], stage: str) -> None:
        logits, probs = self.eval_probabilities(self._inputs(batch))
        label = batch["label"]
        loss = self.compute_loss(logits, label)
        bs = logits.shape[0]
        self.log(f"{stage}/loss", loss, batch_size=bs, sync_dist=True)
        metrics = self._collection(f"{stage}_clip")
        metrics.update(probs, self._metric_target(label))
        if "video_index" in batch:  # without it every clip is its own video: clip metrics only
            self._aggregator(stage).update(probs, label, batch["video_index"])

    def _eval_epoch_end(self, stage: str) -> dict[str, Tensor]:
        clip = self._collection(f"{stage}_clip")
        results = {f"{stage}/{k}": v for k, v in clip.compute().items()}
        clip.reset()
        aggregator = self._aggregator(stage)
        if aggregator.update_count == 0:
            tuning = self.hparams.get("tune_threshold", "none") != "none" and stage == "val"
            if tuning and not self._warned_no_video_index:
                log.warning(
                    "tune_threshold needs video_index in the validation batches (every "
                    "lowres-har data module provides it): thresholds not tuned"
                )
                self._warned_no_video_index = True
            self.log_dict(results, prog_bar=(stage == "val"))
            return results
        video_probs, video_target, _ = aggregator.compute()
        aggregator.reset()
        # torchmetrics squeezes one-element results: restore the (V, ...) shapes for V == 1
        video_probs = video_probs.reshape(-1, self.hparams["num_classes"])
        if self.hparams["multilabel"]:
            video_target = video_target.reshape(-1, self.hparams["num_classes"])
        else:
            video_target = video_target.reshape(-1)
        video = self._collection(f"{stage}_video")
        video.update(video_probs, self._metric_target(video_target))
        results.update({f"{stage}/video_{k}": v for k, v in video.compute().items()})
        video.reset()
        if self.hparams["multilabel"] and self.hparams.get("tune_threshold", "none") != "none":
            results.update(self._decision_metrics(stage, video_probs, video_target))
        self.log_dict(results, prog_bar=(stage == "val"))
        if (
            stage == "test"
            and not self.hparams["multilabel"]
            and not getattr(self.trainer, "fast_dev_run", False)
        ):
            self._save_test_plots(video_probs, video_target)
        return results

    def _decision_metrics(self, stage: str, probs: Tensor, target: Tensor) -> dict[str, Tensor]:
        """At val (not during the sanity check) tune ``decision_threshold`` on the video
        probabilities ``(V, C)``; then the class-averaged F1/precision/recall at it."""
        trainer = self._trainer
        if stage == "val" and not (trainer is not None and trainer.sanity_checking):
            tuned = tune_thresholds(
                probs,
                target,
                mode=self.hparams["tune_threshold"],
                grid=self.hparams.get("threshold_grid"),
                default=self.hparams["threshold"],
            )
            self.decision_threshold.copy_(tuned.to(self.decision_threshold))
        scores = macro_prf(probs, target, self.decision_threshold)
        out = {f"{stage}/video_{k}_tuned": v for k, v in scores.items()}
        out[f"{stage}/threshold"] = float(self.decision_threshold.mean())
        return {k: torch.tensor(v, device=probs.device) for k, v in out.items()}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Class probabilities ``(B, num_classes)`` of each clip (softmax, or sigmoid when
        multi-label; merged with the mirrored clip's when ``tta_hflip``). Clips are not merged
        per video here: batches carry ``video_index`` for that (see
        :class:`~lowres_har.callbacks.TinyActionAnswerWriter`)."""
        return self.eval_probabilities(self._inputs(batch))[1]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store what ``lowres-har predict`` needs beyond the hyper-parameters (which already
        hold the model, its options, ``class_names``, ``multilabel`` and ``threshold``) under
        ``checkpoint["lowres_har"]``: ``"pipeline"`` (``datamodule.inference_config()``),
        ``"input_keys"`` and ``"version"`` when the trainer's data module has
        ``inference_config``, and for multi-label tasks ``"decision_threshold"`` (the ``C``
        decision thresholds, a copy of the buffer of the same name). Nothing is added for a
        single-label task without such a data module."""
        entry: dict[str, Any] = {}
        trainer = self._trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        config = getattr(datamodule, "inference_config", None)
        if callable(config):
            from lowres_har._version import __version__

            entry.update(pipeline=config(), input_keys=list(self.input_keys), version=__version__)
        if self.hparams["multilabel"]:
            entry["decision_threshold"] = [float(v) for v in self.decision_threshold.tolist()]
        if entry:
            checkpoint["lowres_har"] = entry

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints written before ``decision_threshold`` existed get it from their
        ``threshold`` (so strict loading works); newer ones restore the stored values."""
        state = checkpoint.get("state_dict")
        if self.hparams["multilabel"] and isinstance(state, dict):
            state.setdefault("decision_threshold", self.decision_threshold.detach().clone())

    def _save_test_plots(self, probs: Tensor, target: Tensor) -> None:
        from lowres_har.viz import plot_confusion_matrix, plot_per_class_accuracy

        cm = self.confusion.to(probs.device)
        cm.reset()
        cm.update(probs, target)
        matrix = cm.compute().cpu()
        cm.reset()
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if not self.trainer.is_global_zero:
            return
        out = Path(log_dir or self.trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_confusion_matrix(matrix, self.class_names, out / "confusion_matrix.png")
        plot_per_class_accuracy(matrix, self.class_names, out / "per_class_accuracy.png")
        log.info("saved confusion_matrix.png and per_class_accuracy.png to %s", out)

    # -------------------------------------------------------------- optimizers
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        params = [p for p in self.parameters() if p.requires_grad]
        if hp["optimizer"] == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(
                params, lr=hp["lr"], weight_decay=hp["weight_decay"]
            )
        elif hp["optimizer"] == "adamw":
            opt = torch.optim.AdamW(params, lr=hp["lr"], weight_decay=hp["weight_decay"])
        else:
            opt = torch.optim.SGD(
                params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"]
            )
        if hp["scheduler"] == "none" and not hp["warmup_epochs"]:
            return opt
        total_steps = max(int(self.trainer.estimated_stepping_batches), 1)
        max_epochs = self.trainer.max_epochs if self.trainer.max_epochs not in (None, -1) else 1
        steps_per_epoch = max(total_steps / max(max_epochs, 1), 1.0)
        factor = lr_factor_fn(
            scheduler=hp["scheduler"],
            epochs=float(max_epochs),
            warmup_epochs=float(hp["warmup_epochs"]),
            floor=hp["min_lr"] / hp["lr"] if hp["lr"] > 0 else 0.0,
            milestones=hp["milestones"] or [],
            gamma=hp["gamma"],
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: factor(step / steps_per_epoch))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def lr_factor_fn(
    *,
    scheduler: str,
    epochs: float,
    warmup_epochs: float = 0.0,
    floor: float = 0.0,
    milestones: list[int] | None = None,
    gamma: float = 0.1,
) -> Any:
    """Learning-rate multiplier as a function of (fractional) epoch.

    Linear warm-up from 0.01 to 1 over ``warmup_epochs``, then the schedule, never below ``floor``
    (``min_lr / lr``).
    """
    milestones = sorted(milestones or [])

    def factor(epoch: float) -> float:
        if warmup_epochs > 0 and epoch < warmup_epochs:
            return 0.01 + 0.99 * epoch / warmup_epochs
        if scheduler == "cosine":
            span = max(epochs - warmup_epochs, 1e-8)
            progress = min(max((epoch - warmup_epochs) / span, 0.0), 1.0)
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if scheduler == "multistep":
            return max(gamma ** sum(epoch >= m for m in milestones), floor)
        if scheduler == "exponential":
            return max(gamma ** (epoch - warmup_epochs), floor)
        return 1.0

    return factor
