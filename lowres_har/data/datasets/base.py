"""``ClipDataset``: a map-style dataset of clips over a list of ``(path, label)`` videos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lowres_har.data.io import read_video
from lowres_har.data.sampling import random_clip, segment_indices, uniform_clips

__all__ = ["ClipDataset", "Label"]

#: An integer class index, or a multi-hot vector for multi-label datasets.
Label = int | Sequence[float]


class ClipDataset(Dataset[dict[str, torch.Tensor]]):
    """Clips of videos, decoded with PyAV and turned into batch entries by ``transform``.

    Item ``i`` is clip ``i % clips_per_video`` of video ``i // clips_per_video``, so the length is
    exact and the index deterministic (DDP samplers split it safely). Training uses one random
    clip per video; evaluation uses ``clips_per_video`` evenly spaced clips (or segment centres).

    Each item is ``{**transform(frames), "label": int64 () or float (C,), "video_index": int64 ()}``.

    Args:
        videos: ``(path, label)`` per video.
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
        videos: Sequence[tuple[str | Path, Label]],
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
        self.videos = [(str(p), label) for p, label in videos]
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
        frames = frames[self.clip_indices(len(frames), clip)]
        item: dict[str, Any] = dict(self.transform(frames))
        if isinstance(label, int):
            item["label"] = torch.tensor(label, dtype=torch.long)
        else:
            item["label"] = torch.as_tensor(label, dtype=torch.float32)
        item["video_index"] = torch.tensor(video_index, dtype=torch.long)
        return item
