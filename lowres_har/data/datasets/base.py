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

from lowres_har.data.io import read_video
from lowres_har.data.sampling import random_clip, segment_indices, uniform_clips

__all__ = ["ON_ERROR", "ClipDataset", "Label", "VideoEntry", "check_videos"]

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
        short: policy for videos shorter than a clip: ``"loop"`` or ``"repeat_last"``.
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
    ) -> None:
        if sampling not in ("clip", "segment"):
            raise ValueError(f"sampling must be 'clip' or 'segment', got {sampling!r}")
        if clips_per_video < 1:
            raise ValueError(f"clips_per_video must be >= 1, got {clips_per_video}")
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

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        video_index, clip = divmod(index, self.clips_per_video)
        path, label = self.videos[video_index]
        frames, _ = read_video(path)
        span = self.ranges[video_index]
        if span is not None:
            frames = frames[span[0] : span[1]]
        frames = frames[self.clip_indices(len(frames), clip)]
        item: dict[str, Any] = dict(self.transform(frames))
        if isinstance(label, int):
            item["label"] = torch.tensor(label, dtype=torch.long)
        else:
            item["label"] = torch.as_tensor(label, dtype=torch.float32)
        item["video_index"] = torch.tensor(video_index, dtype=torch.long)
        return item
