"""``ClipDataset``: a map-style dataset of clips over a list of ``(path, label)`` videos, and
:func:`check_videos`, the shared policy for split entries whose video file is missing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lowres_har.data.cache import VideoCache
from lowres_har.data.io import VideoDecodeError, read_video
from lowres_har.data.sampling import (
    SHORT_POLICIES,
    gather_frames,
    random_clip,
    segment_indices,
    uniform_clips,
)

__all__ = ["ON_ERROR", "ClipDataset", "Label", "SlidingWindowDataset", "VideoEntry", "check_videos"]

log = logging.getLogger("lowres_har")

#: An integer class index, or a multi-hot vector for multi-label datasets.
Label = int | Sequence[float]

#: A split entry: ``(path, label)`` or ``(path, label, (start, end))`` where ``[start, end)`` is a
#: frame range inside the file (action instances cut from longer recordings, e.g. IXMAS).
VideoEntry = tuple[str, Label] | tuple[str, Label, tuple[int, int]]

#: Values of ``on_error``: ``"raise"`` stops with a clear error, ``"skip"`` logs and counts.
ON_ERROR = ("raise", "skip")


def check_videos(
    entries: Sequence[VideoEntry],
    *,
    on_error: str = "raise",
    what: str = "split",
    show: int = 5,
) -> list[VideoEntry]:
    """Keep the entries whose video exists (a file, or a folder of frames).

    Args:
        entries: split entries ``(path, label[, (start, end)])``.
        on_error: ``"raise"``: any missing video raises ``FileNotFoundError`` naming how many are
            missing and the first ``show`` of them; ``"skip"``: drop them and log a warning with
            the count and the first names.
        what: what the entries are (e.g. ``"HMDB51 fold 1 train"``), used in the message.
        show: how many missing paths to name.

    Returns:
        The entries whose path exists, in their original order.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    kept: list[VideoEntry] = []
    missing: list[str] = []
    for entry in entries:
        if Path(entry[0]).exists():
            kept.append(entry)
        else:
            missing.append(str(entry[0]))
    if missing:
        names = ", ".join(missing[:show]) + (", ..." if len(missing) > show else "")
        msg = f"{what}: {len(missing)} of {len(entries)} videos are missing ({names})"
        if on_error == "raise":
            raise FileNotFoundError(msg + "; set on_error: skip to train without them")
        log.warning("%s; skipped (on_error: skip)", msg)
    return kept


def _stored_names(transform: Any) -> list[str]:
    """Names a transform reads from a cache: its views, then its streams."""
    return [*transform.views, *getattr(transform, "streams", {})]


class ClipDataset(Dataset[dict[str, torch.Tensor]]):
    """Clips of videos, decoded with PyAV and turned into batch entries by ``transform``.

    Item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``, so the length is
    exact and the index deterministic (DDP samplers split it safely). Training uses one random
    clip per video; evaluation uses ``clips_per_video`` evenly spaced clips (or segment centres).

    Each item is ``{**transform(frames), "label": int64 () or float (C,), "video_index": int64 ()}``.

    Args:
        videos: ``(path, label)`` per video, or ``(path, label, (start, end))`` for an action
            instance spanning frames ``[start, end)`` of a longer file or frame folder.
        transform: uint8 ``(T, H, W, 3)`` → ``{key: tensor}``.
        num_frames: frames per clip.
        stride: frame step inside a clip (``sampling="clip"``).
        sampling: ``"clip"`` (contiguous strided clip) or ``"segment"`` (one frame per segment).
        train: random clip / segment offsets (else deterministic).
        clips_per_video: clips per video (evaluation).
        short: policy for videos shorter than a clip: ``"loop"``, ``"repeat_last"`` or
            ``"pad"`` (black frames).
        cache: a :class:`~lowres_har.data.cache.VideoCache` holding these videos' views; clips are
            then sliced from it (``transform`` must have ``from_views``, like
            :class:`~lowres_har.data.views.ClipTransform`) instead of decoding the file.
        on_error: a video that fails to decode: ``"raise"`` (default) or ``"skip"`` (log it once
            and serve the next video in the list instead).
    """

    def __init__(
        self,
        videos: Sequence[VideoEntry],
        transform: Callable[[np.ndarray], dict[str, torch.Tensor]],
        *,
        num_frames: int = 16,
        stride: int = 1,
        sampling: str = "clip",
        train: bool = False,
        clips_per_video: int = 1,
        short: str = "loop",
        cache: VideoCache | None = None,
        on_error: str = "raise",
    ) -> None:
        if sampling not in ("clip", "segment"):
            raise ValueError(f"sampling must be 'clip' or 'segment', got {sampling!r}")
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {clips_per_video}")
        if short not in SHORT_POLICIES:
            raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")
        self.videos: list[tuple[str, Label]] = [(str(v[0]), v[1]) for v in videos]
        #: ``(start, end)`` frame range per video, ``None`` for the whole file.
        self.ranges: list[tuple[int, int] | None] = [
            (int(v[2][0]), int(v[2][1])) if len(v) > 2 else None  # type: ignore[misc]
            for v in videos
        ]
        self.transform = transform
        self.num_frames = num_frames
        self.stride = stride
        self.sampling = sampling
        self.train = train
        self.clips_per_video = 1 if train else clips_per_video
        self.short = short
        self.on_error = on_error
        self.cache = cache
        self.keys: list[str] = []
        if cache is not None:
            if not hasattr(transform, "from_views"):
                raise TypeError("a cached ClipDataset needs a transform with from_views()")
            self.keys = [
                cache.key(p, r) for (p, _), r in zip(self.videos, self.ranges, strict=True)
            ]
        self._failed: set[int] = set()

    def __len__(self) -> int:
        return len(self.videos) * self.clips_per_video

    def clip_indices(self, num_video: int, clip: int) -> np.ndarray:
        """Frame indices of clip number ``clip`` in a video of ``num_video`` frames."""
        if self.sampling == "segment":
            if self.train:
                return segment_indices(num_video, self.num_frames, random=True)
            idx = segment_indices(num_video, self.num_frames, random=False)
            if self.clips_per_video > 1:  # shift segment centres evenly across clips
                seg = num_video / self.num_frames
                offset = (clip + 0.5) / self.clips_per_video - 0.5
                idx = np.clip(idx + round(offset * seg), 0, num_video - 1)
            return idx
        if self.train:
            return random_clip(num_video, self.num_frames, self.stride, short=self.short)
        return uniform_clips(
            num_video, self.num_frames, self.stride, self.clips_per_video, short=self.short
        )[clip]

    def _load(self, video_index: int, clip: int) -> dict[str, torch.Tensor]:
        if self.cache is not None:
            key = self.keys[video_index]
            idx = self.clip_indices(self.cache.num_frames(key), clip)
            keep = np.maximum(idx, 0)
            views = self.cache.frames(key, _stored_names(self.transform), keep)
            if (idx < 0).any():  # "pad" policy: black frames
                views = {
                    n: gather_frames(v, np.where(idx < 0, -1, np.arange(len(idx))))
                    for n, v in views.items()
                }
            return dict(self.transform.from_views(views, **self._seed(video_index, clip)))  # type: ignore[attr-defined]
        path = self.videos[video_index][0]
        span = self.ranges[video_index]
        if span is None:
            frames, _ = read_video(path)
        else:
            frames, _ = read_video(path, start=span[0], end=span[1])
        idx = self.clip_indices(len(frames), clip)
        if getattr(self.transform, "needs_video", False):  # streams: computed over the video
            return dict(self.transform.from_video(frames, idx, **self._seed(video_index, clip)))  # type: ignore[attr-defined]
        frames = gather_frames(frames, idx)
        return dict(self.transform(frames, **self._seed(video_index, clip)))  # type: ignore[call-arg]

    def _seed(self, video_index: int, clip: int) -> dict[str, int]:
        """Evaluation items seed the transform's noise with their index (reproducible metrics)."""
        if self.train or not getattr(self.transform, "takes_seed", False):
            return {}
        return {"seed": video_index * self.clips_per_video + clip}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        video_index, clip = divmod(index, self.clips_per_video)
        for _ in range(len(self.videos)):
            if video_index in self._failed:  # known bad in this process: do not decode again
                video_index = (video_index + 1) % len(self.videos)
                continue
            try:
                item: dict[str, Any] = self._load(video_index, clip)
                break
            except VideoDecodeError as err:
                if self.on_error != "skip":
                    raise
                if video_index not in self._failed:
                    self._failed.add(video_index)
                    log.warning(
                        "skipping %s (on_error: skip; %d failed so far in this process): %s",
                        self.videos[video_index][0],
                        len(self._failed),
                        err,
                    )
                video_index = (video_index + 1) % len(self.videos)
        else:
            raise VideoDecodeError(f"every video of this dataset failed to decode ({len(self)})")
        label = self.videos[video_index][1]
        if isinstance(label, int):
            item["label"] = torch.tensor(label, dtype=torch.long)
        else:
            item["label"] = torch.as_tensor(label, dtype=torch.float32)
        item["video_index"] = torch.tensor(video_index, dtype=torch.long)
        return item


class SlidingWindowDataset(Dataset[dict[str, torch.Tensor]]):
    """Every window of every video, for prediction over whole videos.

    Windows come from :func:`~lowres_har.data.sampling.sliding_windows`: ``num_frames`` frames
    ``stride`` apart, starts ``step`` apart, the last window aligned to the video's end. Frame
    counts are read once at construction (from the cache, or by decoding with
    :func:`~lowres_har.data.io.probe_video`), so ``len`` is exact and the index deterministic.

    Each item is ``{**views, "label", "video_index": int64 (), "window_start": int64 (),
    "window_end": int64 (), "fps": float32 ()}``; ``[window_start, window_end)`` are frame
    numbers within the entry (add the entry's range start for positions in the file).

    Args:
        videos: split entries ``(path, label[, (start, end)])``.
        transform: an evaluation :class:`~lowres_har.data.views.ClipTransform`.
        num_frames: frames per window.
        stride: frame step inside a window.
        step: frames between window starts (default: the window span, no overlap).
        short: policy for videos shorter than a window.
        cache: optional :class:`~lowres_har.data.cache.VideoCache` holding the videos.
    """

    def __init__(
        self,
        videos: Sequence[VideoEntry],
        transform: Callable[[np.ndarray], dict[str, torch.Tensor]],
        *,
        num_frames: int = 16,
        stride: int = 1,
        step: int | None = None,
        short: str = "loop",
        cache: VideoCache | None = None,
    ) -> None:
        from lowres_har.data.io import probe_video
        from lowres_har.data.sampling import sliding_windows

        self.clips = ClipDataset(
            videos, transform, num_frames=num_frames, stride=stride, short=short, cache=cache
        )
        self.videos = self.clips.videos
        self.windows: list[tuple[int, np.ndarray, int, int]] = []
        self.fps: list[float] = []
        for v, ((path, _), span) in enumerate(zip(self.videos, self.clips.ranges, strict=True)):
            if cache is not None:
                count, fps = cache.num_frames(self.clips.keys[v]), cache.fps(self.clips.keys[v])
            else:
                meta = probe_video(path)
                count = meta.num_frames if span is None else min(span[1], meta.num_frames) - span[0]
                fps = meta.fps
            self.fps.append(fps)
            for idx, start, end in sliding_windows(count, num_frames, stride, step, short=short):
                self.windows.append((v, idx, start, end))

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        v, idx, start, end = self.windows[index]
        clips, cache, transform = self.clips, self.clips.cache, self.clips.transform
        seed = {"seed": index} if getattr(transform, "takes_seed", False) else {}
        if cache is not None:
            views = cache.frames(clips.keys[v], _stored_names(transform), np.maximum(idx, 0))
            views = {
                n: gather_frames(a, np.where(idx < 0, -1, np.arange(len(idx))))
                for n, a in views.items()
            }
            item: dict[str, Any] = dict(transform.from_views(views, **seed))  # type: ignore[attr-defined]
        else:
            path, span = self.videos[v][0], clips.ranges[v]
            offset = 0 if span is None else span[0]
            if getattr(transform, "needs_video", False):  # streams: computed over the video
                if span is None:
                    frames, _ = read_video(path)
                else:
                    frames, _ = read_video(path, start=span[0], end=span[1])
                item = dict(transform.from_video(frames, idx, **seed))  # type: ignore[attr-defined]
            else:
                hi = int(idx.max()) + 1
                frames, _ = read_video(path, start=offset, end=offset + hi)
                item = dict(transform(gather_frames(frames, idx), **seed))  # type: ignore[call-arg]
        label = self.videos[v][1]
        item["label"] = torch.as_tensor(
            label, dtype=torch.long if isinstance(label, int) else torch.float32
        )
        item["video_index"] = torch.tensor(v, dtype=torch.long)
        item["window_start"] = torch.tensor(start, dtype=torch.long)
        item["window_end"] = torch.tensor(end, dtype=torch.long)
        item["fps"] = torch.tensor(self.fps[v], dtype=torch.float32)
        return item
