"""Sliding-window action recognition on real videos: ``lowres-har predict VIDEO... --ckpt CKPT``.

A trained model is run over every window of a video file (anything PyAV/FFmpeg decodes) or of a
folder of image frames, through the same evaluation pipeline the model was validated with:

1. the video is decoded (:func:`~lowres_har.data.io.read_video` for files whose RGB frames fit
   in 256 MB; longer files are probed with :func:`~lowres_har.data.io.probe_video` for the exact
   frame count, timestamps and decode errors, then decoded in chunks) and each chunk goes
   straight through the evaluation transform's deterministic part (short-side scale and centre
   crop when the recipe has them, then each view's degradation, e.g. area-downsampling to the
   12×16 eLR camera), so only the small degraded frames are kept;
2. derived streams (MSN's optical flow and slack mask) are computed over the whole degraded
   video, as the data modules compute them;
3. windows of ``num_frames`` frames ``stride`` apart, starts ``window_step`` apart
   (:func:`~lowres_har.data.sampling.sliding_windows`; default no overlap, the last window aligned
   to the end so the tail is covered, a video shorter than one window looped) are finished
   (noise, upsampling, normalisation: :meth:`~lowres_har.data.views.ClipTransform.finish`) and
   classified in batches;
4. every window gets its top-k classes; the video gets the top-k of its window probabilities
   merged the way the model was evaluated (the checkpoint's ``aggregate``: ``mean``, or ``max``
   per class as in the thesis' K-clip TTA). With the checkpoint's ``tta_hflip`` every window is
   also classified mirrored left-right and the two merged (``tta_reduce``), as in validation.
   Multi-label models use sigmoid probabilities and report the classes whose probability is
   *greater than* their decision threshold: the thresholds tuned on validation and stored in
   the checkpoint (``checkpoint["lowres_har"]["decision_threshold"]``, one per class), else its
   ``threshold`` hyper-parameter, unless ``threshold`` / ``--threshold`` overrides them.

The pipeline comes from the checkpoint (``checkpoint["lowres_har"]["pipeline"]``, written by
:meth:`~lowres_har.data.datamodules.VideoDataModule.inference_config` when the model was trained
with a lowres-har data module) or, for plain weights and older checkpoints, from options whose
defaults come from the model card (:meth:`InferencePipeline.from_model`).

JSON written per video (``schema`` ``"lowres-har.predict/1"``; times in seconds from the first
frame's presentation time, frame numbers 0-based in decoding order, ranges half-open)::

    {
      "schema": "lowres-har.predict/1",
      "video": "path/to/clip.mp4",
      "num_frames": 393,            # frames decoded
      "fps": 10.0,                  # the stream's average rate (0.0 when unknown)
      "duration_s": 39.3,           # first frame to the end of the last one (null if untimed)
      "height": 288, "width": 384,  # decoded frame size, display rotation applied
      "sample_fps": null,           # the rate windows were sampled at (null: every frame)
      "frames_used": 393,           # frames the windows index (== num_frames without sample_fps)
      "complete": true,             # false: --allow-partial kept the frames before a break
      "model": {"name": "c3d_tiny", "kwargs": {...}, "source": "run.ckpt",
                "num_classes": 12, "input_keys": ["video"], "multilabel": false,
                "threshold": null,  # multi-label: one number, or a list (one per class)
                "tta_hflip": false},
      "pipeline": {...},            # InferencePipeline.as_dict() actually used
      "window": {"num_frames": 16, "stride": 2, "span": 31, "step": 31},
      "windows": [
        {"index": 0, "start_frame": 0, "end_frame": 31, "start_s": 0.0, "end_s": 3.1,
         "topk": [{"index": 3, "name": "clap", "prob": 0.41}, ...],
         "labels": [...]}           # multi-label only: classes with prob > threshold
        ...
      ],
      "aggregate": {"method": "mean", "topk": [...], "labels": [...]},   # or "max"
      "timing": {"decode_s": 0.8, "model_s": 0.1, "total_s": 1.0},
      "probs": [[...], ...]         # --probs only: every window's num_classes probabilities
    }

``end_frame`` is exclusive: a window spans frames ``[start_frame, end_frame)`` of the file (with
``stride`` > 1 it samples every ``stride``-th of them), ``end_s`` is the presentation time of
``end_frame`` (the video's end time for the last frame). Consecutive windows touch or overlap,
so together they cover every frame. ``start_s``/``end_s`` are ``null`` for an untimed source
(a frame folder without ``folder_fps``). The CSV (``--csv``) has one row per window: ``video,
window, start_frame, end_frame, start_s, end_s``, then ``top{k}_index, top{k}_name, top{k}_prob``
for each k and, for multi-label models, ``labels`` (``name:prob`` joined by ``;``).

Library use::

    from lowres_har.predict import VideoPredictor, predict_video
    pred = predict_video("run.ckpt", "clip.mp4", window_step=8)
    pred.aggregate_topk[0].name, pred.windows[0].start_s

    predictor = VideoPredictor("run.ckpt", batch_size=16)   # build once, reuse
    for path in paths:
        print(predictor.predict(path).as_dict())
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lowres_har.data.io import VideoDecodeError, VideoMetadata, probe_video, read_video
from lowres_har.data.sampling import SHORT_POLICIES, gather_frames, segment_indices, sliding_windows
from lowres_har.data.views import STREAM_KINDS, ClipTransform, parse_streams, parse_views
from lowres_har.export.common import LoadedModel, load_model
from lowres_har.multilabel import as_thresholds, combine_tta, hflip_inputs, thresholds_for_json
from lowres_har.registry import create_model, list_models, model_card
from lowres_har.transforms import KINETICS_MEAN, KINETICS_STD

__all__ = [
    "SCHEMA",
    "ClassScore",
    "InferencePipeline",
    "PredictionResults",
    "PreparedVideo",
    "VideoPrediction",
    "VideoPredictor",
    "WindowPrediction",
    "build_parser",
    "command",
    "find_videos",
    "is_video_invocation",
    "output_names",
    "predict_video",
    "predict_videos",
]

log = logging.getLogger("lowres_har")

#: ``schema`` value of the JSON files.
SCHEMA = "lowres-har.predict/1"

#: Model input sizes up to this many pixels a side default to an eLR camera (``--elr``).
_ELR_MAX_SIDE = 64
#: The default eLR camera ``(H, W)`` for small (32×32-style) models.
DEFAULT_ELR: tuple[int, int] = (12, 16)
#: Bytes of full-resolution RGB frames decoded at once before degradation (long videos).
_CHUNK_BYTES = 64 * 2**20
#: Videos whose decoded RGB frames fit in this many bytes (header estimate) are read in one
#: pass with :func:`~lowres_har.data.io.read_video`; longer ones are probed, then decoded in
#: chunks of :data:`_CHUNK_BYTES`, so memory stays bounded whatever the video's length.
_WHOLE_VIDEO_BYTES = 256 * 2**20

_AUTO = "auto"


# ---------------------------------------------------------------------------------------------
# pipeline
# ---------------------------------------------------------------------------------------------


@dataclass
class InferencePipeline:
    """The evaluation data pipeline of a model, JSON-able.

    Attributes:
        views: ``{name: view spec}`` as :func:`~lowres_har.data.views.parse_views` reads it
            (``size`` ``[H, W]`` of the recorded view, ``upsample_to`` the network input, ...).
        streams: ``{name: {kind, view, ...options}}`` as
            :func:`~lowres_har.data.views.parse_streams` reads it (e.g. MSN's flow and mask).
        num_frames: frames per window ``T``.
        stride: frame step inside a window.
        sampling: ``"clip"`` (sliding windows) or ``"segment"`` (TSN-style: one window of
            ``num_frames`` segment centres spanning the whole video).
        short: policy for videos shorter than one window (``loop``, ``repeat_last``, ``pad``).
        window_step: frames between window starts (``None``: the window span, no overlap).
        mean: per-channel normalisation mean, [0, 1] units.
        std: per-channel normalisation std.
        short_side_scale: evaluation short side (pixels) of the source frames before the crop,
            as ``[min, max]`` (evaluation uses ``min``), or ``None``.
        crop_size: ``[H, W]`` centre crop of the source frames, or ``None``.
        fps: resample the video to this rate (frames per second) before windowing; ``None``
            uses every decoded frame.
        class_names: class names stored with the pipeline (informational).
        source: ``"checkpoint"``, ``"flags"`` or ``"given"``: where the pipeline came from.
    """

    views: dict[str, dict[str, Any]]
    streams: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_frames: int = 16
    stride: int = 1
    sampling: str = "clip"
    short: str = "loop"
    window_step: int | None = None
    mean: list[float] = field(default_factory=lambda: list(KINETICS_MEAN))
    std: list[float] = field(default_factory=lambda: list(KINETICS_STD))
    short_side_scale: list[int] | None = None
    crop_size: list[int] | None = None
    fps: float | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = "given"

    def __post_init__(self) -> None:
        parsed = parse_views(self.views)  # validates, raises ValueError naming the view
        parse_streams(self.streams, parsed)
        if self.num_frames < 1 or self.stride < 1:
            raise ValueError(
                f"num_frames and stride must be >= 1, got {self.num_frames}, {self.stride}"
            )
        if self.window_step is not None and self.window_step < 1:
            raise ValueError(f"window_step must be >= 1, got {self.window_step}")
        if self.sampling not in ("clip", "segment"):
            raise ValueError(f"sampling must be 'clip' or 'segment', got {self.sampling!r}")
        if self.short not in SHORT_POLICIES:
            raise ValueError(f"short must be one of {SHORT_POLICIES}, got {self.short!r}")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"mean and std need 3 values (std > 0), got {self.mean}, {self.std}")

    @property
    def span(self) -> int:
        """Frames one window spans, ``(num_frames - 1) * stride + 1``."""
        return (self.num_frames - 1) * self.stride + 1

    @property
    def step(self) -> int:
        """Frames between window starts (``window_step`` or the span)."""
        return self.window_step or self.span

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "checkpoint") -> InferencePipeline:
        """Read :meth:`as_dict` output or a data module's ``inference_config()``.

        Keys this version does not use (``version``, ``eval_clips``, ``data_fps``, ...) are
        ignored; a missing ``views`` is an error.
        """
        if "views" not in data:
            raise ValueError(f"a pipeline needs 'views', got keys {sorted(data)}")
        return cls(
            views={k: dict(v) for k, v in dict(data["views"]).items()},
            streams={k: dict(v) for k, v in dict(data.get("streams") or {}).items()},
            num_frames=int(data.get("num_frames", 16)),
            stride=int(data.get("stride", 1)),
            sampling=str(data.get("sampling", "clip")),
            short=str(data.get("short", "loop")),
            window_step=None if data.get("window_step") is None else int(data["window_step"]),
            mean=[float(v) for v in data.get("mean", KINETICS_MEAN)],
            std=[float(v) for v in data.get("std", KINETICS_STD)],
            short_side_scale=_int_list(data.get("short_side_scale")),
            crop_size=_int_list(data.get("crop_size")),
            fps=None if data.get("fps") is None else float(data["fps"]),
            class_names=[str(c) for c in data.get("class_names") or []],
            source=source,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict (what :meth:`from_dict` reads back)."""
        return asdict(self)

    @classmethod
    def from_model(
        cls,
        loaded: LoadedModel,
        *,
        num_frames: int | None = None,
        stride: int | None = None,
        size: Sequence[int] | None = None,
        elr_size: Sequence[int] | None | str = _AUTO,
        flow_method: str | None = None,
        fps: float | None = None,
    ) -> InferencePipeline:
        """A pipeline from options, with defaults from the model and its card.

        Args:
            loaded: the model (its ``clip_shape`` when it has one, e.g. MSN, then its card's
                inputs give the defaults).
            num_frames: frames per window (default: the model's / card's clip length).
            stride: frame step inside a window (default 1).
            size: network input ``(H, W)`` (default: the model's / card's).
            elr_size: the eLR camera ``(H, W)`` the frames are area-downsampled to before the
                bilinear upsampling to ``size``; ``"auto"`` (default) picks 12×16 for inputs up
                to 64 pixels a side and none above; ``None`` resizes straight to ``size``.
            flow_method: optical flow estimator for a ``flow`` input (default ``"tvl1"``).
            fps: resampling rate (``None``: every decoded frame).
        """
        card = model_card(loaded.name) if loaded.name in list_models() else None
        clip = getattr(loaded.model, "clip_shape", None)
        spec = None
        if card is not None:
            spec = card.inputs.get("video") or next(iter(card.inputs.values()), None)
        t = num_frames or (int(clip[0]) if clip else None) or (spec.frames if spec else None) or 16
        hw: tuple[int, int]
        if size is not None:
            hw = (int(size[0]), int(size[1]))
        elif clip:
            hw = (int(clip[1]), int(clip[2]))
        else:
            hw = tuple(spec.size) if spec else (32, 32)  # type: ignore[assignment]
        if isinstance(elr_size, str):
            if elr_size != _AUTO:
                raise ValueError(f"elr_size must be (H, W), None or 'auto', got {elr_size!r}")
            elr = DEFAULT_ELR if max(hw) <= _ELR_MAX_SIDE else None
        else:
            elr = None if elr_size is None else (int(elr_size[0]), int(elr_size[1]))
        if elr is not None and tuple(elr) != hw:
            view: dict[str, Any] = {"size": list(elr), "upsample_to": list(hw)}
        else:
            view = {"size": list(hw)}
        streams: dict[str, dict[str, Any]] = {}
        for key in loaded.input_keys:
            if key == "video":
                continue
            kind = next((k for k in STREAM_KINDS if key.startswith(k)), None)
            if kind is None:
                raise ValueError(
                    f"cannot build model input {key!r} from options (video, flow, mask only); "
                    "use a checkpoint with a stored pipeline"
                )
            streams[key] = {"kind": kind, "view": "video"}
            if kind == "flow":
                streams[key]["method"] = flow_method or "tvl1"
        return cls(
            views={"video": view},
            streams=streams,
            num_frames=int(t),
            stride=int(stride or 1),
            fps=fps,
            class_names=list(loaded.class_names),
            source="flags",
        )

    def for_inputs(self, input_keys: Sequence[str]) -> InferencePipeline:
        """The views and streams the model's ``input_keys`` need (and the views those streams
        are computed from); training-only views (e.g. MSN's LR ``video_lr``) are dropped."""
        missing = [k for k in input_keys if k not in self.views and k not in self.streams]
        if missing:
            raise ValueError(
                f"the pipeline has no view or stream named {missing} (views: "
                f"{sorted(self.views)}, streams: {sorted(self.streams)}); the model takes "
                f"{list(input_keys)}"
            )
        streams = {k: v for k, v in self.streams.items() if k in input_keys}
        parsed = parse_streams(streams, parse_views(self.views))
        needed = {k for k in input_keys if k in self.views} | {s.view for s in parsed.values()}
        views = {k: v for k, v in self.views.items() if k in needed}
        return replace(self, views=views, streams=streams)

    def transform(self) -> ClipTransform:
        """The evaluation :class:`~lowres_har.data.views.ClipTransform` (``train=False``)."""
        views = parse_views(self.views)
        return ClipTransform(
            views,
            train=False,
            mean=self.mean,
            std=self.std,
            short_side_scale=self.short_side_scale,
            crop_size=self.crop_size,
            streams=parse_streams(self.streams, views),
        )


def _int_list(value: Any) -> list[int] | None:
    return None if value is None else [int(v) for v in value]


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassScore:
    """One class of a ranking: ``index`` into the classifier, ``name``, probability ``prob``."""

    index: int
    name: str
    prob: float


@dataclass
class WindowPrediction:
    """One window: frames ``[start_frame, end_frame)`` of the file (0-based decoding order),
    their times ``start_s``/``end_s`` (seconds from the first frame; ``None`` when the source is
    untimed), the ``topk`` classes and, for multi-label models, ``labels`` (probability greater
    than the class's threshold, best first)."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float | None
    end_s: float | None
    topk: list[ClassScore]
    labels: list[ClassScore] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict (``labels`` only for multi-label models)."""
        out = asdict(self)
        if self.labels is None:
            out.pop("labels")
        return out


@dataclass
class VideoPrediction:
    """Predictions for one video (see the module docstring for the JSON layout).

    Attributes:
        video: the file or frame folder.
        num_frames: frames decoded.
        fps: the stream's average frame rate (0.0 when unknown).
        duration_s: seconds from the first frame to the end of the last (``None``: untimed).
        height: decoded frame height (pixels).
        width: decoded frame width (pixels).
        sample_fps: the rate windows were sampled at (``None``: every frame).
        frames_used: frames the windows index (``num_frames`` unless resampled).
        complete: the whole file decoded (``False``: ``allow_partial`` kept the frames before a
            break).
        windows: one :class:`WindowPrediction` per window, in time order.
        probs: ``(num_windows, num_classes)`` float32 window probabilities (softmax, or sigmoid
            for multi-label models).
        aggregate_topk: top-k of the merged window probabilities.
        aggregate_labels: multi-label only: classes whose merged probability is greater than
            their threshold.
        model: name, kwargs, source, num_classes, input_keys, multilabel, threshold (one float,
            or one per class; ``None`` for single-label models), tta_hflip.
        pipeline: the :class:`InferencePipeline` used, as a dict.
        window: ``num_frames``, ``stride``, ``span``, ``step`` (frames).
        timing: ``decode_s`` (probe, decode, degrade, streams), ``model_s``, ``total_s``.
        aggregate_method: how the windows were merged, ``"mean"`` or ``"max"``.
    """

    video: str
    num_frames: int
    fps: float
    duration_s: float | None
    height: int
    width: int
    sample_fps: float | None
    frames_used: int
    complete: bool
    windows: list[WindowPrediction]
    probs: np.ndarray
    aggregate_topk: list[ClassScore]
    aggregate_labels: list[ClassScore] | None
    model: dict[str, Any]
    pipeline: dict[str, Any]
    window: dict[str, int]
    timing: dict[str, float] = field(default_factory=dict)
    aggregate_method: str = "mean"

    def as_dict(self, *, include_probs: bool = False) -> dict[str, Any]:
        """The JSON layout of the module docstring; ``include_probs`` adds ``"probs"`` (one
        list of ``num_classes`` probabilities per window)."""
        aggregate: dict[str, Any] = {
            "method": self.aggregate_method,
            "topk": [asdict(s) for s in self.aggregate_topk],
        }
        if self.aggregate_labels is not None:
            aggregate["labels"] = [asdict(s) for s in self.aggregate_labels]
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "video": self.video,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "duration_s": self.duration_s,
            "height": self.height,
            "width": self.width,
            "sample_fps": self.sample_fps,
            "frames_used": self.frames_used,
            "complete": self.complete,
            "model": self.model,
            "pipeline": self.pipeline,
            "window": self.window,
            "windows": [w.as_dict() for w in self.windows],
            "aggregate": aggregate,
            "timing": self.timing,
        }
        if include_probs:
            out["probs"] = [[round(float(p), 6) for p in row] for row in self.probs]
        return out

    def write_json(self, path: str | Path, *, include_probs: bool = False) -> Path:
        """Write :meth:`as_dict` to ``path`` (folders created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(include_probs=include_probs), indent=2) + "\n")
        return path

    def write_csv(self, path: str | Path) -> Path:
        """One row per window (see the module docstring for the columns)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        k = max((len(w.topk) for w in self.windows), default=0)
        multilabel = self.aggregate_labels is not None
        header = ["video", "window", "start_frame", "end_frame", "start_s", "end_s"]
        for i in range(1, k + 1):
            header += [f"top{i}_index", f"top{i}_name", f"top{i}_prob"]
        if multilabel:
            header.append("labels")
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for w in self.windows:
                row: list[Any] = [
                    self.video,
                    w.index,
                    w.start_frame,
                    w.end_frame,
                    "" if w.start_s is None else f"{w.start_s:.6f}",
                    "" if w.end_s is None else f"{w.end_s:.6f}",
                ]
                for s in w.topk:
                    row += [s.index, s.name, f"{s.prob:.6f}"]
                row += [""] * (3 * (k - len(w.topk)))
                if multilabel:
                    row.append(";".join(f"{s.name}:{s.prob:.6f}" for s in w.labels or []))
                writer.writerow(row)
        return path


@dataclass
class PreparedVideo:
    """A video decoded and put through the deterministic part of the pipeline.

    Attributes:
        path: the file or frame folder.
        meta: :func:`~lowres_har.data.io.probe_video`'s description (exact frame count,
            timestamps in seconds).
        frame_index: ``(M,)`` int64 frame numbers of the used frames in the file (``arange(N)``
            unless resampled to ``fps``).
        frames: ``{view: uint8 (M, h, w, 3)}`` at each view's recorded size and ``{stream:
            uint8 (M, H, W, C)}`` (quantised, see :class:`~lowres_har.data.views.StreamSpec`).
        sample_fps: the resampling rate, or ``None``.
        seconds: wall time of probing, decoding, degradation and streams.
    """

    path: str
    meta: VideoMetadata
    frame_index: np.ndarray
    frames: dict[str, np.ndarray]
    sample_fps: float | None
    seconds: float


@dataclass
class PredictionResults:
    """What :func:`predict_videos` returns: the ``predictions`` of the videos that worked, in
    input order, and ``failures`` ``{path or input: error message}`` for those that did not."""

    predictions: list[VideoPrediction]
    failures: dict[str, str]


# ---------------------------------------------------------------------------------------------
# predictor
# ---------------------------------------------------------------------------------------------


def _resolve_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {str(device)!r} ({err})") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but MPS is not available")
    return dev


def _read_class_names(path: str | Path) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"class names file {p} not found")
    names = [line.strip() for line in p.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{p}: no class names (one per line expected)")
    return names


class VideoPredictor:
    """A model plus its evaluation pipeline, ready to run over videos.

    Args:
        model: a :class:`~lowres_har.export.common.LoadedModel` or a lowres-har task checkpoint
            (``.ckpt``) path (:func:`~lowres_har.export.common.load_model`).
        pipeline: an :class:`InferencePipeline` (or its dict) to use instead of the one stored in
            the checkpoint.
        num_frames: override the pipeline's frames per window.
        stride: override its frame step inside a window.
        size: network input ``(H, W)``; only where the pipeline is built from options (no
            stored pipeline), see :meth:`InferencePipeline.from_model`.
        elr_size: eLR camera ``(H, W)``, ``None`` or ``"auto"``; options only, as ``size``.
        flow_method: optical flow estimator of a flow input; options only, as ``size``.
        fps: resample videos to this rate before windowing (``None``: every decoded frame).
        window_step: frames between window starts (default: the pipeline's, else the window
            span: no overlap).
        topk: classes reported per window and for the video.
        batch_size: windows per forward pass.
        device: torch device for the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        multilabel: override the checkpoint's ``multilabel`` (sigmoid + threshold).
        threshold: multi-label decision threshold(s), one value or one per class, overriding
            the checkpoint's (its tuned ``decision_threshold``, else its ``threshold``
            hyper-parameter, else 0.5).
        aggregate: how window probabilities are merged for the video, ``"mean"`` or ``"max"``
            (default: the checkpoint's ``aggregate``, else ``"mean"``).
        tta_hflip: also classify each window mirrored left-right and merge by the checkpoint's
            ``tta_reduce`` (default: the checkpoint's ``tta_hflip``, else off).
        class_names: names of the classes (default: the checkpoint's).
        folder_fps: frame rate of image-frame folders (they have none; 0 leaves them untimed).
        allow_partial: a file that breaks mid-stream (truncated, corrupt packet) is predicted on
            the frames decoded before the break, with a warning and ``complete: false``,
            instead of failing.

    Raises:
        ValueError: inconsistent options (e.g. ``size`` with a stored pipeline, a window length
            the model cannot take, class names of the wrong length, an unavailable device).
    """

    def __init__(
        self,
        model: LoadedModel | str | Path,
        *,
        pipeline: InferencePipeline | Mapping[str, Any] | None = None,
        num_frames: int | None = None,
        stride: int | None = None,
        size: Sequence[int] | None = None,
        elr_size: Sequence[int] | None | str = _AUTO,
        flow_method: str | None = None,
        fps: float | None = None,
        window_step: int | None = None,
        topk: int = 5,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        multilabel: bool | None = None,
        threshold: float | Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
        folder_fps: float | None = None,
        allow_partial: bool = False,
        aggregate: str | None = None,
        tta_hflip: bool | None = None,
    ) -> None:
        self.allow_partial = allow_partial
        self.loaded = model if isinstance(model, LoadedModel) else load_model(model)
        loaded = self.loaded
        stored = loaded.extra.get("pipeline")
        layout_options = {
            "size": size,
            "elr_size": None if elr_size == _AUTO else elr_size,
            "flow_method": flow_method,
        }
        given_layout = [k for k, v in layout_options.items() if v is not None]
        if elr_size is None:
            given_layout.append("elr_size")
        if pipeline is not None or stored is not None:
            if given_layout:
                where = "the pipeline given" if pipeline is not None else "the checkpoint"
                raise ValueError(
                    f"{', '.join(sorted(set(given_layout)))} only apply when the pipeline is built "
                    f"from options; {where} already defines the views and streams"
                )
            if isinstance(pipeline, InferencePipeline):
                pipe = pipeline
            elif pipeline is not None:
                pipe = InferencePipeline.from_dict(pipeline, source="given")
            else:
                pipe = InferencePipeline.from_dict(stored)  # type: ignore[arg-type]
            overrides: dict[str, Any] = {}
            if num_frames is not None:
                overrides["num_frames"] = int(num_frames)
            if stride is not None:
                overrides["stride"] = int(stride)
            if fps is not None:
                overrides["fps"] = float(fps)
            pipe = replace(pipe, **overrides) if overrides else pipe
        else:
            if loaded.source is not None:
                log.warning(
                    "%s stores no inference pipeline (trained before lowres-har stored one, or "
                    "without a lowres-har data module): building it from options and the model "
                    "card; check --num-frames/--stride/--size/--elr match the training recipe",
                    loaded.source,
                )
            pipe = InferencePipeline.from_model(
                loaded,
                num_frames=num_frames,
                stride=stride,
                size=size,
                elr_size=elr_size,
                flow_method=flow_method,
                fps=fps,
            )
        if window_step is not None:
            pipe = replace(pipe, window_step=int(window_step))
        self.pipeline = pipe.for_inputs(loaded.input_keys)
        self._check_model_shape()
        self.transform = self.pipeline.transform()
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.topk = min(int(topk), loaded.num_classes)
        self.batch_size = int(batch_size)
        self.device = _resolve_device(device)
        hp = loaded.hparams
        self.multilabel = bool(hp.get("multilabel", False) if multilabel is None else multilabel)
        n = loaded.num_classes
        if threshold is not None:
            chosen: Any = threshold
        elif loaded.extra.get("decision_threshold") is not None:
            chosen = loaded.extra["decision_threshold"]
        else:
            chosen = hp.get("threshold", 0.5)
        try:
            #: decision thresholds, float64 ``(num_classes,)``
            self.thresholds = as_thresholds(chosen, n).numpy()
        except ValueError as err:
            raise ValueError(f"multi-label threshold: {err}") from err
        self.aggregate = str(hp.get("aggregate", "mean") if aggregate is None else aggregate)
        if self.aggregate not in ("mean", "max"):
            raise ValueError(f"aggregate must be 'mean' or 'max', got {self.aggregate!r}")
        self.tta_hflip = bool(hp.get("tta_hflip", False) if tta_hflip is None else tta_hflip)
        self.tta_reduce = str(hp.get("tta_reduce", "max"))
        names = list(class_names) if class_names is not None else list(loaded.class_names)
        if len(names) != loaded.num_classes:
            raise ValueError(
                f"{len(names)} class names for a model with {loaded.num_classes} classes"
            )
        self.class_names = names
        self.folder_fps = folder_fps
        self.model = loaded.model.to(self.device).eval()

    @property
    def threshold(self) -> float | list[float]:
        """The decision threshold: one float when every class shares it, else one per class."""
        return thresholds_for_json(self.thresholds)

    def _check_model_shape(self) -> None:
        clip = getattr(self.loaded.model, "clip_shape", None)
        if clip is None or not getattr(self.loaded.model, "fixed_size", True):
            return
        views = parse_views(self.pipeline.views)
        sizes = {views[k].output_size for k in self.loaded.input_keys if k in views}
        for st in parse_streams(self.pipeline.streams, views).values():
            sizes.add(views[st.view].output_size)
        want = (int(clip[1]), int(clip[2]))
        if self.pipeline.num_frames != int(clip[0]) or any(s != want for s in sizes):
            raise ValueError(
                f"the model takes T×H×W = {tuple(int(c) for c in clip)} clips, but the pipeline "
                f"gives {self.pipeline.num_frames} frames of {sorted(sizes)}"
            )

    # ----------------------------------------------------------------------- decoding
    def sample_indices(self, meta: VideoMetadata) -> tuple[np.ndarray, float | None]:
        """``(frame_index (M,), sample_fps)``: every frame, or with ``pipeline.fps`` the frame
        on screen at each multiple of ``1 / fps`` seconds (needs timestamps)."""
        n = meta.num_frames
        rate = self.pipeline.fps
        if rate is None:
            return np.arange(n, dtype=np.int64), None
        stamps = np.asarray(meta.timestamps, dtype=np.float64)
        if len(stamps) != n or meta.duration <= 0:
            raise ValueError(
                f"{meta.path}: resampling to {rate} fps needs frame timestamps, and this source "
                "has none (for a frame folder pass folder_fps / --folder-fps)"
            )
        times = np.arange(0.0, meta.duration - 1e-9, 1.0 / rate)
        idx = np.searchsorted(stamps, times + 1e-9, side="right") - 1
        return np.clip(idx, 0, n - 1).astype(np.int64), float(rate)

    def _chunks(self, path: Path, meta: VideoMetadata, index: np.ndarray) -> Iterator[np.ndarray]:
        """uint8 RGB ``(t, H, W, 3)`` chunks of the frames ``index`` (non-decreasing), in order."""
        chunk = max(1, min(256, _CHUNK_BYTES // max(1, meta.height * meta.width * 3)))
        if path.is_dir():
            for i in range(0, len(index), chunk):
                frames, _ = read_video(
                    path, indices=index[i : i + chunk].tolist(), fps=self.folder_fps
                )
                yield frames
            return
        yield from _decode_file_chunks(path, meta, index, chunk)

    def _decode(self, path: Path) -> tuple[VideoMetadata, np.ndarray, Iterator[np.ndarray]]:
        """``(metadata, frame_index, RGB chunks)``: short files in one :func:`read_video` pass,
        long files and frame folders probed first, then decoded chunk by chunk."""
        if path.is_file():
            head = probe_video(path, count_frames=False)  # opens it, decodes one frame
            estimate = head.num_frames * head.height * head.width * 3
            if 0 < estimate <= _WHOLE_VIDEO_BYTES:
                frames, meta = read_video(path, allow_partial=self.allow_partial)
                index, _ = self.sample_indices(meta)
                step = max(1, _CHUNK_BYTES // max(1, meta.height * meta.width * 3))
                chunks = (frames[index[i : i + step]] for i in range(0, len(index), step))
                return meta, index, chunks
        meta = probe_video(path, fps=self.folder_fps, allow_partial=self.allow_partial)
        if meta.num_frames < 1:
            raise VideoDecodeError(f"{path}: no video frames")
        index, _ = self.sample_indices(meta)
        return meta, index, self._chunks(path, meta, index)

    def prepare(self, path: str | Path) -> PreparedVideo:
        """Decode and degrade one video (no model involved; thread-safe).

        A file whose decoded frames fit in :data:`_WHOLE_VIDEO_BYTES` (by its header) is read
        in one pass; a longer one is probed (:func:`~lowres_har.data.io.probe_video`: exact
        count, timestamps, errors) and then decoded in chunks that go straight through the
        degradation, so only the small degraded frames are kept.

        Raises:
            VideoDecodeError: the file is missing, not a video, corrupt or truncated (the
                message names the file and the problem).
        """
        start = time.perf_counter()
        p = Path(path)
        if not p.exists():
            raise VideoDecodeError(f"{p}: no such file or folder")
        meta, index, chunks = self._decode(p)
        sample_fps = self.pipeline.fps
        t = self.transform
        parts: dict[str, list[np.ndarray]] = {name: [] for name in t.views}
        for frames in chunks:
            if t.scale is not None:  # the evaluation branch of ClipTransform.from_video
                frames = t.scale(frames)
            if t.fixed_crop is not None:
                frames = t.fixed_crop(frames)
            for name, degrade in t.degrader.degrade.items():
                small = degrade(frames)  # the decoder reuses its chunk buffer: never keep a view
                parts[name].append(small.copy() if np.shares_memory(small, frames) else small)
        out = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        upsampled: dict[str, np.ndarray] = {}
        for name, stream in t.degrader.streams.items():  # whole video, as ViewDegrader does
            if stream.view not in upsampled:
                upsampled[stream.view] = t.degrader.output_frames(stream.view, out[stream.view])
            out[name] = stream.compute(upsampled[stream.view])
        return PreparedVideo(
            path=str(p),
            meta=meta,
            frame_index=index,
            frames=out,
            sample_fps=sample_fps,
            seconds=time.perf_counter() - start,
        )

    # ------------------------------------------------------------------------ windows
    def windows(self, num_used: int) -> list[tuple[np.ndarray, int, int]]:
        """``[(indices (T,), start, end), ...]`` over ``num_used`` frames (see
        :func:`~lowres_har.data.sampling.sliding_windows`); ``"segment"`` sampling gives one
        window of segment centres over the whole video."""
        p = self.pipeline
        if p.sampling == "segment":
            return [(segment_indices(num_used, p.num_frames, random=False), 0, num_used)]
        return sliding_windows(num_used, p.num_frames, p.stride, p.step, short=p.short)

    def window_inputs(
        self, prepared: PreparedVideo, indices: np.ndarray, seed: int
    ) -> dict[str, Tensor]:
        """The model inputs of one window, ``{key: float (C, T, H, W)}`` — what
        ``ClipTransform.from_video(frames, indices, seed=seed)`` gives for the used frames."""
        views = {k: gather_frames(prepared.frames[k], indices) for k in self.loaded.input_keys}
        return self.transform.finish(views, seed=seed)

    def _scores(self, probs: np.ndarray) -> tuple[list[ClassScore], list[ClassScore] | None]:
        order = np.argsort(-probs, kind="stable")
        top = [ClassScore(int(i), self.class_names[i], float(probs[i])) for i in order[: self.topk]]
        if not self.multilabel:
            return top, None
        labels = [
            ClassScore(int(i), self.class_names[i], float(probs[i]))
            for i in order
            if probs[i] > self.thresholds[i]
        ]
        return top, labels

    def run(self, prepared: PreparedVideo, *, progress: Any = None) -> VideoPrediction:
        """Classify every window of a prepared video.

        Args:
            prepared: :meth:`prepare` output.
            progress: a ``rich.progress.Progress`` to show the windows on (optional).
        """
        start = time.perf_counter()
        meta = prepared.meta
        windows = self.windows(len(prepared.frame_index))
        task = None
        if progress is not None:
            task = progress.add_task(Path(prepared.path).name, total=len(windows))
        probs: list[np.ndarray] = []
        keys = self.loaded.input_keys
        for b in range(0, len(windows), self.batch_size):
            items = [
                self.window_inputs(prepared, idx, seed=b + j)
                for j, (idx, _, _) in enumerate(windows[b : b + self.batch_size])
            ]
            inputs = [torch.stack([it[k] for it in items]).to(self.device) for k in keys]
            with torch.inference_mode():
                p = self._probabilities(self.model(*inputs), prepared.path)
                if self.tta_hflip:
                    flipped = self.model(*hflip_inputs(inputs, keys))
                    p = combine_tta(p, self._probabilities(flipped, prepared.path), self.tta_reduce)
            probs.append(p.cpu().numpy())
            if progress is not None:
                progress.advance(task, len(items))
        if progress is not None:
            progress.remove_task(task)
        all_probs = np.concatenate(probs).astype(np.float32)
        stamps = meta.timestamps if len(meta.timestamps) == meta.num_frames else ()
        duration = meta.duration if stamps else None

        def seconds(frame: int) -> float | None:
            if not stamps:
                return None
            return float(stamps[frame]) if frame < len(stamps) else float(meta.duration)

        out_windows: list[WindowPrediction] = []
        fi = prepared.frame_index
        for w, ((_, s, e), row) in enumerate(zip(windows, all_probs, strict=True)):
            first, last = int(fi[s]), int(fi[e - 1]) + 1
            top, labels = self._scores(row)
            out_windows.append(
                WindowPrediction(w, first, last, seconds(first), seconds(last), top, labels)
            )
        merged = all_probs.max(axis=0) if self.aggregate == "max" else all_probs.mean(axis=0)
        agg_top, agg_labels = self._scores(merged)
        model_s = time.perf_counter() - start
        loaded = self.loaded
        return VideoPrediction(
            video=prepared.path,
            num_frames=meta.num_frames,
            fps=float(meta.fps),
            duration_s=duration,
            height=meta.height,
            width=meta.width,
            sample_fps=prepared.sample_fps,
            frames_used=len(fi),
            complete=bool(meta.complete),
            windows=out_windows,
            probs=all_probs,
            aggregate_topk=agg_top,
            aggregate_labels=agg_labels,
            model={
                "name": loaded.name,
                "kwargs": loaded.model_kwargs,
                "source": loaded.source,
                "num_classes": loaded.num_classes,
                "input_keys": list(loaded.input_keys),
                "multilabel": self.multilabel,
                "threshold": self.threshold if self.multilabel else None,
                "tta_hflip": self.tta_hflip,
            },
            pipeline=self.pipeline.as_dict(),
            window={
                "num_frames": self.pipeline.num_frames,
                "stride": self.pipeline.stride,
                "span": self.pipeline.span,
                "step": self.pipeline.step,
            },
            timing={
                "decode_s": round(prepared.seconds, 4),
                "model_s": round(model_s, 4),
                "total_s": round(prepared.seconds + model_s, 4),
            },
            aggregate_method=self.aggregate,
        )

    def _probabilities(self, logits: Tensor, path: str) -> Tensor:
        logits = logits.float()
        if not torch.isfinite(logits).all():
            raise RuntimeError(f"{path}: the model produced non-finite logits")
        return logits.sigmoid() if self.multilabel else logits.softmax(dim=1)

    def predict(
        self, path: str | Path, *, progress: Any = None, preview: str | Path | None = None
    ) -> VideoPrediction:
        """:meth:`prepare` then :meth:`run`; with ``preview`` also :meth:`write_preview`."""
        prepared = self.prepare(path)
        prediction = self.run(prepared, progress=progress)
        if preview is not None:
            self.write_preview(prepared, prediction, preview)
        return prediction

    # ------------------------------------------------------------------------ preview
    def preview_view(self) -> str:
        """The view a preview shows: ``video`` when the pipeline has it, else the first."""
        return "video" if "video" in self.pipeline.views else next(iter(self.pipeline.views))

    def preview_frames(
        self, prepared: PreparedVideo, prediction: VideoPrediction, *, target: int = 128
    ) -> np.ndarray:
        """uint8 ``(M, H', W', 3)``: the degraded frames the model saw (the preview view at its
        recorded size, before noise and upsampling), nearest-upscaled by the integer factor that
        brings the long side to at least ``target`` pixels, over a black band carrying the
        top-1 class and probability of the window each frame belongs to (the one whose centre
        is nearest)."""
        import cv2

        small = prepared.frames[self.preview_view()]
        m, h, w = small.shape[:3]
        k = max(1, -(-target // max(h, w)))
        big = np.repeat(np.repeat(small, k, axis=1), k, axis=2)
        band = max(12, (h * k) // 8)
        canvas = np.zeros((m, h * k + band, w * k, 3), np.uint8)
        canvas[:, : h * k] = big
        # which window labels each used frame: the covering window with the nearest centre
        spans = self.windows(m)
        best = np.full(m, np.inf)
        owner = np.zeros(m, np.int64)
        for wi, (_, s, e) in enumerate(spans):
            rng = np.arange(s, min(e, m))
            dist = np.abs(rng - (s + e - 1) / 2)
            better = dist < best[rng]
            best[rng[better]] = dist[better]
            owner[rng[better]] = wi
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = band / 30
        cache: dict[int, np.ndarray] = {}
        for i in range(m):
            wi = int(owner[i])
            if wi not in cache:
                top = prediction.windows[wi].topk[0]
                name, prob = top.name, f" {top.prob:.2f}"
                text = name + prob
                while name and cv2.getTextSize(text, font, scale, 1)[0][0] > w * k - 4:
                    name = name[:-1]  # shorten the class name, keep the probability
                    text = name + "." + prob
                strip = np.zeros((band, w * k, 3), np.uint8)
                cv2.putText(
                    strip, text, (2, band - band // 4), font, scale, (255, 255, 255), 1, cv2.LINE_AA
                )
                cache[wi] = strip
            canvas[i, h * k :] = cache[wi]
        return canvas

    def write_preview(
        self, prepared: PreparedVideo, prediction: VideoPrediction, path: str | Path
    ) -> Path:
        """Encode :meth:`preview_frames` (H.264) at the rate the windows were sampled at."""
        from lowres_har.data.io import write_video

        rate = prepared.sample_fps or prepared.meta.fps or 25.0
        return write_video(path, self.preview_frames(prepared, prediction), fps=rate)


def _decode_file_chunks(
    path: Path, meta: VideoMetadata, index: np.ndarray, chunk: int
) -> Iterator[np.ndarray]:
    """Decode a video file once, yielding RGB chunks of the frames ``index`` (non-decreasing,
    repeats allowed) as :func:`~lowres_har.data.io.read_video` returns them (first stream,
    frames at the first frame's size, display rotation applied), without holding the whole
    video in memory. The yielded array is reused for the next chunk: consume it first."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise VideoDecodeError(f"{path}: cannot open ({err})") from err
    n = 0  # frames decoded
    pos = 0  # next entry of index
    filled = 0  # frames in buf
    buf: np.ndarray | None = None  # reused between chunks: no fresh pages per chunk
    try:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = (0, 0)
        k = 0
        for frame in container.decode(stream):
            if buf is None:
                size = (frame.height, frame.width)
                k = round(frame.rotation / 90) % 4
                shape = (size[1], size[0]) if k % 2 else size
                buf = np.empty((chunk, *shape, 3), np.uint8)
            if pos < len(index) and index[pos] == n:
                img = frame.to_ndarray(format="rgb24", width=size[1], height=size[0], threads=1)
                img = np.rot90(img, k) if k else img
                while pos < len(index) and index[pos] == n:
                    buf[filled] = img
                    filled += 1
                    pos += 1
                    if filled == chunk:
                        yield buf
                        filled = 0
            n += 1
            if pos >= len(index):
                break
    except av.FFmpegError as err:
        raise VideoDecodeError(f"{path}: decoding failed at frame {n} ({err})") from err
    finally:
        container.close()
    if pos < len(index):
        raise VideoDecodeError(
            f"{path}: the stream ended after {n} frames, but probing counted {meta.num_frames}"
        )
    if filled and buf is not None:
        yield buf[:filled]


# ---------------------------------------------------------------------------------------------
# many videos
# ---------------------------------------------------------------------------------------------


def find_videos(inputs: Sequence[str | Path]) -> tuple[list[Path], dict[str, str]]:
    """Expand command-line inputs into videos.

    * an existing file is a video (whatever its extension; decoding decides);
    * a folder of image frames is one video; any other folder is searched recursively for
      video files (:data:`~lowres_har.data.datasets.folder.VIDEO_EXTENSIONS`) and frame folders
      (hidden entries skipped);
    * anything else containing ``*``, ``?`` or ``[`` is a glob pattern (``**`` recursive); its
      matches are expanded like the above, files kept only with a video extension.

    Returns:
        ``(videos, failures)``: the videos in input order, each once; ``failures`` maps inputs
        that are missing, match nothing or hold no video to the problem.
    """
    from lowres_har.data.datasets.folder import VIDEO_EXTENSIONS, is_frame_folder

    videos: list[Path] = []
    seen: set[Path] = set()
    failures: dict[str, str] = {}

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            videos.append(p)

    def walk(folder: Path) -> int:
        found = 0
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if is_frame_folder(entry):
                    add(entry)
                    found += 1
                else:
                    found += walk(entry)
            elif entry.is_file() and entry.suffix.lower() in VIDEO_EXTENSIONS:
                add(entry)
                found += 1
        return found

    for item in inputs:
        text = str(item)
        p = Path(text).expanduser()
        if p.is_file():
            add(p)
        elif p.is_dir():
            if is_frame_folder(p):
                add(p)
            elif walk(p) == 0:
                failures[text] = f"{p}: no video files or frame folders in this folder"
        elif any(c in text for c in "*?["):
            matches = sorted(glob.glob(str(p), recursive=True))
            found = 0
            for m in map(Path, matches):
                if m.is_dir():
                    if is_frame_folder(m):
                        add(m)
                        found += 1
                    else:
                        found += walk(m)
                elif m.suffix.lower() in VIDEO_EXTENSIONS:
                    add(m)
                    found += 1
            if not found:
                failures[text] = f"{text}: the pattern matches no video"
        else:
            failures[text] = f"{p}: no such file or folder"
    return videos, failures


def output_names(paths: Sequence[str | Path]) -> list[str]:
    """A distinct file-name stem per video: its stem (``again`` for ``asl/again.mkv``); where
    stems collide, the name with its extension (``test.avi``), then parent folders prepended
    (``asl__again.mkv``); names that still collide (the same path twice) are the stem numbered
    ``-2``, ``-3``..."""

    def candidates(path: str | Path) -> list[str]:
        p = Path(path)
        out = [p.stem if p.suffix else p.name, p.name]
        parents = [q for q in p.parent.parts if q not in ("/", "", ".", "..")]
        for i in range(1, len(parents) + 1):
            out.append("__".join([*parents[-i:], p.name]))
        return out

    options = [candidates(p) for p in paths]
    level = [0] * len(paths)
    while True:
        names = [options[i][level[i]] for i in range(len(paths))]
        clashes = {n for n in names if names.count(n) > 1}
        movable = [
            i for i, n in enumerate(names) if n in clashes and level[i] + 1 < len(options[i])
        ]
        if not movable:
            break
        for i in movable:
            level[i] += 1
    # still clashing (the same path twice): the plain stem, numbered
    names = [options[i][0] if names.count(n) > 1 else n for i, n in enumerate(names)]
    counts: dict[str, int] = {}
    unique = []
    for n in names:
        counts[n] = counts.get(n, 0) + 1
        unique.append(n if counts[n] == 1 else f"{n}-{counts[n]}")
    return unique


def _iter_predictions(
    predictor: VideoPredictor,
    videos: Sequence[Path],
    *,
    num_workers: int,
    progress: Any,
) -> Iterator[tuple[Path, VideoPrediction | Exception, PreparedVideo | None]]:
    """``(video, prediction or the error, prepared video or None)`` in input order; with
    ``num_workers`` > 0 that many threads decode and degrade the next videos while the model
    runs (PyAV, OpenCV and torch release the GIL)."""

    def classify(path: Path, prepared: PreparedVideo) -> Any:
        try:
            return path, predictor.run(prepared, progress=progress), prepared
        except Exception as err:  # one bad video must not stop the others
            return path, err, None

    if num_workers <= 0:
        for path in videos:
            try:
                prepared = predictor.prepare(path)
            except Exception as err:
                yield path, err, None
                continue
            yield classify(path, prepared)
        return
    with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="lowres-har-decode") as ex:
        pending: deque[tuple[Path, Future[PreparedVideo]]] = deque()
        it = iter(videos)
        try:
            for path in it:
                pending.append((path, ex.submit(predictor.prepare, path)))
                if len(pending) > num_workers:
                    break
            while pending:
                path, fut = pending.popleft()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, ex.submit(predictor.prepare, nxt)))
                try:
                    prepared = fut.result()
                except Exception as err:
                    yield path, err, None
                    continue
                yield classify(path, prepared)
        finally:  # the caller stopped early (fail fast): do not decode what nobody will use
            for _, fut in pending:
                fut.cancel()


def _describe(path: Path | str, err: BaseException) -> str:
    """An error message that names the file (library errors already do)."""
    text = (str(err) or type(err).__name__).replace(
        "pass allow_partial=True", "pass allow_partial=True (--allow-partial)"
    )
    return text if str(path) in text else f"{path}: {type(err).__name__}: {text}"


def predict_video(
    model: VideoPredictor | LoadedModel | str | Path, path: str | Path, **options: Any
) -> VideoPrediction:
    """Predict one video.

    Args:
        model: a :class:`VideoPredictor`, a :class:`~lowres_har.export.common.LoadedModel` or a
            task checkpoint path.
        path: a video file or frame folder.
        **options: :class:`VideoPredictor` options (when ``model`` is not one already), plus
            ``progress`` (a ``rich.progress.Progress``) and ``preview`` (a path for the eLR
            preview video).

    Raises:
        VideoDecodeError: the video cannot be read (the message names the file).
    """
    run_options = {k: options.pop(k) for k in ("progress", "preview") if k in options}
    if not isinstance(model, VideoPredictor):
        model = VideoPredictor(model, **options)
    elif options:
        raise TypeError(f"options {sorted(options)} need a model or checkpoint, not a predictor")
    return model.predict(path, **run_options)


def predict_videos(
    model: VideoPredictor | LoadedModel | str | Path,
    inputs: Sequence[str | Path],
    *,
    fail_fast: bool = False,
    num_workers: int = 0,
    progress: Any = None,
    **options: Any,
) -> PredictionResults:
    """Predict every video of ``inputs`` (files, folders, glob patterns: :func:`find_videos`).

    Args:
        model: as :func:`predict_video`.
        inputs: what to predict.
        fail_fast: raise the first error instead of recording it in ``failures``.
        num_workers: threads decoding upcoming videos while the model runs (0: none).
        progress: a ``rich.progress.Progress`` showing the windows (optional).
        **options: :class:`VideoPredictor` options.

    Returns:
        :class:`PredictionResults` (predictions in input order, failures by path).
    """
    predictor = model if isinstance(model, VideoPredictor) else VideoPredictor(model, **options)
    videos, failures = find_videos(inputs)
    if fail_fast and failures:
        raise VideoDecodeError(next(iter(failures.values())))
    predictions: list[VideoPrediction] = []
    for path, result, _ in _iter_predictions(
        predictor, videos, num_workers=num_workers, progress=progress
    ):
        if isinstance(result, Exception):
            if fail_fast:
                raise result
            failures[str(path)] = _describe(path, result)
        else:
            predictions.append(result)
    return PredictionResults(predictions, failures)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------

_DESCRIPTION = """\
Two forms:

  lowres-har predict VIDEO... --ckpt CKPT [options]
  lowres-har predict VIDEO... --model NAME --weights PATH --num-classes N [options]
      Sliding-window recognition on video files (anything PyAV/FFmpeg decodes), folders of
      image frames, folders searched recursively for both, or glob patterns. The evaluation
      pipeline (eLR degradation, flow/mask streams, normalisation, clip length) is rebuilt
      from the checkpoint; for --model/--weights, and for checkpoints that do not store one,
      it comes from --num-frames/--stride/--size/--elr/--flow-method with defaults from the
      model card. Each window gets its top-k classes with start/end frames and seconds; the
      video gets the top-k of the window probabilities merged as the model was evaluated
      (the checkpoint's aggregate, mean or max; --aggregate overrides). Multi-label models list
      the classes above the decision thresholds tuned on validation and stored in the
      checkpoint (--threshold overrides). A video that fails is reported and the others go on
      (exit status 1 at the end), unless --fail-fast.

  lowres-har predict --config FILE [--ckpt_path CKPT] [LightningCLI options]
      Lightning's predict over a recipe's data module (with --data.init_args.predict_windows
      true for sliding windows over a split); `lowres-har predict --config FILE --help` lists
      its options. For the TinyAction challenge's answer.txt add --data.test_split=test
      --trainer.callbacks+=lowres_har.callbacks.TinyActionAnswerWriter
      --trainer.callbacks.output_path=answer.txt."""

_EPILOG = """\
examples:
  lowres-har predict clip.mp4 --ckpt run.ckpt --output clip.json
  lowres-har predict videos/ 'more/**/*.avi' --ckpt run.ckpt -o preds/ --csv --preview
  lowres-har predict clip.mp4 --model r3d_18 --weights r3d.pt --num-classes 400 \\
      --class-names kinetics400.txt --num-frames 16 --stride 2 --topk 3

--output PATH is a .json file for one video, else a folder receiving <video stem>.json (parent
folder names are prepended where stems collide), with --csv <stem>.csv (one row per window) and
--preview <stem>.preview.mp4 (the eLR frames the model saw, upscaled, top-1 label burnt in)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lowres-har predict`` (video form)."""
    p = argparse.ArgumentParser(
        prog="lowres-har predict",
        usage=(
            "lowres-har predict VIDEO... (--ckpt CKPT | --model NAME --weights PATH "
            "--num-classes N) [options]\n       lowres-har predict --config FILE [LightningCLI "
            "options]"
        ),
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="files, folders or glob patterns")
    m = p.add_argument_group("model")
    m.add_argument("--ckpt", type=Path, metavar="CKPT", help="lowres-har task checkpoint (.ckpt)")
    m.add_argument(
        "--model", metavar="NAME", help="registered model name (with --weights and --num-classes)"
    )
    m.add_argument(
        "--weights",
        metavar="PATH",
        help="weights for --model: .ckpt, .pt/.pth state dict, .safetensors",
    )
    m.add_argument("--num-classes", type=int, metavar="N", help="classifier outputs of --weights")
    m.add_argument(
        "--model-kwargs", metavar="JSON", help="JSON object of architecture options for --model"
    )
    m.add_argument(
        "--class-names", type=Path, metavar="FILE", help="file with one class name per line"
    )
    m.add_argument("--multilabel", action="store_true", help="sigmoid outputs and a threshold")
    m.add_argument(
        "--threshold",
        type=float,
        metavar="P",
        help="multi-label threshold for every class (default: the checkpoint's tuned thresholds, "
        "else its threshold)",
    )
    m.add_argument(
        "--aggregate",
        choices=["mean", "max"],
        help="merge window probabilities by mean or max (default: the checkpoint's, else mean)",
    )
    m.add_argument(
        "--tta-hflip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also classify each window mirrored and merge (default: the checkpoint's)",
    )
    d = p.add_argument_group("pipeline (defaults: the checkpoint's, else the model card's)")
    d.add_argument("--num-frames", type=int, metavar="T", help="frames per window")
    d.add_argument(
        "--stride",
        type=int,
        metavar="S",
        help="frame step inside a window (default 1 without a stored pipeline)",
    )
    d.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="network input size")
    d.add_argument(
        "--elr",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="eLR camera size before upsampling to --size (default 12 16 for inputs up to "
        "64 pixels a side, none above)",
    )
    d.add_argument("--no-elr", action="store_true", help="resize straight to --size")
    d.add_argument(
        "--flow-method", choices=["tvl1", "farneback", "dis"], help="flow input (default tvl1)"
    )
    d.add_argument(
        "--fps", type=float, metavar="FPS", help="resample videos to this rate before windowing"
    )
    d.add_argument(
        "--folder-fps", type=float, metavar="FPS", help="frame rate of image-frame folders"
    )
    w = p.add_argument_group("windows and output")
    w.add_argument(
        "--window-step", type=int, metavar="N", help="frames between window starts (default: span)"
    )
    w.add_argument(
        "--topk", type=int, default=5, metavar="K", help="classes per window (default 5)"
    )
    w.add_argument(
        "--output", "-o", type=Path, metavar="PATH", help="JSON file (one video) or folder"
    )
    w.add_argument("--csv", action="store_true", help="also write a CSV, one row per window")
    w.add_argument("--preview", action="store_true", help="also write an eLR preview video")
    w.add_argument("--probs", action="store_true", help="add every window's probabilities")
    r = p.add_argument_group("running")
    r.add_argument(
        "--batch-size", type=int, default=8, metavar="N", help="windows per forward pass"
    )
    r.add_argument("--device", default="cpu", metavar="DEV", help="torch device (default cpu)")
    r.add_argument("--num-workers", type=int, default=0, metavar="N", help="threads decoding ahead")
    r.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch and OpenCV threads (default: theirs; 1 is fastest on a busy machine)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--fail-fast", action="store_true", help="stop at the first failing video")
    r.add_argument(
        "--allow-partial",
        action="store_true",
        help="predict truncated/damaged files on the frames before the break",
    )
    return p


def is_video_invocation(argv: Sequence[str]) -> bool:
    """Whether ``lowres-har predict ARGS`` asks for the video predictor (this module) rather
    than LightningCLI's predict: no ``--config``/``-c``, and a video path first, a video-form
    option (``--ckpt``, ``--weights``, ``--output``, ...), or nothing but ``--help``."""
    tokens = [a.split("=", 1)[0] for a in argv]
    if any(t in ("--config", "-c") for t in tokens):
        return False
    if not argv or not argv[0].startswith("-"):
        return True
    ours = {s for a in build_parser()._actions for s in a.option_strings} - {
        "--model",
        "-h",
        "--help",
    }
    return any(t in ours for t in tokens) or all(t in ("-h", "--help") for t in tokens)


def _load(args: argparse.Namespace) -> LoadedModel:
    if args.ckpt is not None:
        if args.model or args.weights or args.num_classes or args.model_kwargs:
            raise ValueError("--ckpt excludes --model/--weights/--num-classes/--model-kwargs")
        return load_model(args.ckpt)
    if not args.model or not args.weights or not args.num_classes:
        raise ValueError("give --ckpt CKPT, or --model NAME --weights PATH --num-classes N")
    kwargs: dict[str, Any] = {}
    if args.model_kwargs:
        try:
            kwargs = json.loads(args.model_kwargs)
        except json.JSONDecodeError as err:
            raise ValueError(f"--model-kwargs is not valid JSON ({err})") from err
        if not isinstance(kwargs, dict):
            raise ValueError(f"--model-kwargs must be a JSON object, got {args.model_kwargs!r}")
    if args.model not in list_models():
        raise ValueError(f"unknown model {args.model!r} (registered: {', '.join(list_models())})")
    weights = Path(args.weights).expanduser()
    if not weights.is_file():
        raise FileNotFoundError(f"--weights {weights}: no such file")
    net = create_model(args.model, num_classes=args.num_classes, pretrained=str(weights), **kwargs)
    return LoadedModel(
        model=net.eval(),
        name=args.model,
        model_kwargs=kwargs,
        num_classes=int(args.num_classes),
        class_names=[f"class_{i}" for i in range(int(args.num_classes))],
        input_keys=tuple(net.input_keys),  # type: ignore[arg-type]
        source=str(weights),
    )


def _output_paths(
    output: Path | None, videos: Sequence[Path]
) -> list[tuple[Path | None, Path | None, Path | None]]:
    """``(json, csv, preview)`` per video (``None`` everywhere without ``--output``)."""
    if output is None:
        return [(None, None, None)] * len(videos)
    if len(videos) == 1 and output.suffix.lower() == ".json" and not output.is_dir():
        base = output.with_suffix("")
        return [(output, base.with_suffix(".csv"), base.with_suffix(".preview.mp4"))]
    if output.is_file():
        raise ValueError(f"--output {output} is a file; several videos need a folder")
    return [
        (output / f"{n}.json", output / f"{n}.csv", output / f"{n}.preview.mp4")
        for n in output_names(videos)
    ]


def command(argv: Sequence[str]) -> int:
    """``lowres-har predict VIDEO... (--ckpt CKPT | --model NAME --weights PATH --num-classes
    N)``; returns the exit status (0: every video predicted; 1: some failed; 2: bad options)."""
    args = build_parser().parse_args(list(argv))

    def fail(msg: str) -> int:
        print(f"lowres-har predict: {msg}", file=sys.stderr)
        return 2

    if not args.videos:
        return fail("no VIDEO given (files, folders or glob patterns); see --help")
    if (args.csv or args.preview) and args.output is None:
        return fail("--csv and --preview need --output")
    if args.no_elr and args.elr:
        return fail("--elr and --no-elr exclude each other")
    try:
        loaded = _load(args)
        names = _read_class_names(args.class_names) if args.class_names else None
        elr: Any = None if args.no_elr else (args.elr or _AUTO)
        predictor = VideoPredictor(
            loaded,
            num_frames=args.num_frames,
            stride=args.stride,
            size=args.size,
            elr_size=elr,
            flow_method=args.flow_method,
            fps=args.fps,
            window_step=args.window_step,
            topk=args.topk,
            batch_size=args.batch_size,
            device=args.device,
            multilabel=True if args.multilabel else None,
            threshold=args.threshold,
            class_names=names,
            folder_fps=args.folder_fps,
            allow_partial=args.allow_partial,
            aggregate=args.aggregate,
            tta_hflip=args.tta_hflip,
        )
        videos, failures = find_videos(args.videos)
        outputs = _output_paths(args.output, videos)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
        return fail(str(err))
    for msg in failures.values():
        print(f"lowres-har predict: {msg}", file=sys.stderr)
    if failures and args.fail_fast:
        return 1
    if args.threads is not None and args.threads < 1:
        return fail(f"--threads must be >= 1, got {args.threads}")
    import cv2

    saved = torch.get_num_threads(), cv2.getNumThreads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    try:
        return _run(predictor, videos, outputs, failures, args)
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])


def _run(
    predictor: VideoPredictor,
    videos: Sequence[Path],
    outputs: Sequence[tuple[Path | None, Path | None, Path | None]],
    failures: dict[str, str],
    args: argparse.Namespace,
) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    err_console = Console(stderr=True, highlight=False)
    progress: Progress | None = None
    if not args.no_progress:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )

    def report(msg: str) -> None:
        err_console.print(f"lowres-har predict: {msg}", markup=False, soft_wrap=True)

    out_of = dict(zip(videos, outputs, strict=True))
    done: list[VideoPrediction] = []
    start = time.perf_counter()
    overall = None
    if progress is not None:
        progress.start()
        overall = progress.add_task("videos", total=len(videos))
    try:
        for path, result, prepared in _iter_predictions(
            predictor, videos, num_workers=args.num_workers, progress=progress
        ):
            if progress is not None:
                progress.advance(overall)  # type: ignore[arg-type]
            if isinstance(result, Exception):
                failures[str(path)] = _describe(path, result)
                report(failures[str(path)])
                if args.fail_fast:
                    break
                continue
            json_path, csv_path, preview_path = out_of[path]
            try:
                if json_path is not None:
                    result.write_json(json_path, include_probs=args.probs)
                if args.csv and csv_path is not None:
                    result.write_csv(csv_path)
                if args.preview and preview_path is not None and prepared is not None:
                    predictor.write_preview(prepared, result, preview_path)
            except (OSError, ValueError) as err:
                failures[str(path)] = f"{path}: writing the outputs failed ({err})"
                report(failures[str(path)])
                if args.fail_fast:
                    break
                continue
            done.append(result)
    finally:
        if progress is not None:
            progress.stop()
    wall = time.perf_counter() - start
    if done:
        table = Table(title="lowres-har predict")
        table.add_column("video", overflow="fold")
        method = done[0].aggregate_method
        for col in ("frames", "windows", f"top-1 ({method} of windows)", "prob"):
            table.add_column(col, justify="right")
        for pred in done:
            top = pred.aggregate_topk[0]
            table.add_row(
                str(Path(*Path(pred.video).parts[-2:])),
                str(pred.num_frames),
                str(len(pred.windows)),
                top.name,
                f"{top.prob:.3f}",
            )
        Console(highlight=False).print(table)
    frames = sum(p.num_frames for p in done)
    rate = frames / wall if wall > 0 else 0.0
    where = f"; outputs in {args.output}" if args.output is not None else ""
    videos_text = "1 video" if len(done) == 1 else f"{len(done)} videos"
    print(f"{videos_text}, {frames} frames in {wall:.1f} s ({rate:.0f} frames/s){where}")
    if failures:
        print(f"{len(failures)} failed (see the messages above)", file=sys.stderr)
        return 1
    return 0
