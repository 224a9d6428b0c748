"""Temporal sampling: which frame indices of a video form a clip.

Every function returns an ``int64`` numpy array of frame indices into a video of ``num_video``
frames. Videos shorter than the clip span are handled by ``short`` policy:

* ``"loop"``: indices wrap around (the action repeats);
* ``"repeat_last"``: indices past the end repeat the last frame.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["center_clip", "random_clip", "segment_indices", "uniform_clips"]

_POLICIES = ("loop", "repeat_last")


def _fit(indices: np.ndarray, num_video: int, short: str) -> np.ndarray:
    if num_video < 1:
        raise ValueError("cannot sample from a video with no frames")
    if short == "loop":
        return indices % num_video
    if short == "repeat_last":
        return np.minimum(indices, num_video - 1)
    raise ValueError(f"short must be one of {_POLICIES}, got {short!r}")


def _span(num_frames: int, stride: int) -> int:
    if num_frames < 1 or stride < 1:
        raise ValueError(f"num_frames and stride must be >= 1, got {num_frames}, {stride}")
    return (num_frames - 1) * stride + 1


def random_clip(
    num_video: int,
    num_frames: int,
    stride: int = 1,
    *,
    short: str = "loop",
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """``num_frames`` indices ``stride`` apart starting at a uniformly random frame.

    Returns:
        ``(num_frames,)`` int64 indices in ``[0, num_video)``.
    """
    span = _span(num_frames, stride)
    start = int(torch.randint(0, max(num_video - span, 0) + 1, (), generator=generator))
    return _fit(start + stride * np.arange(num_frames, dtype=np.int64), num_video, short)


def center_clip(
    num_video: int, num_frames: int, stride: int = 1, *, short: str = "loop"
) -> np.ndarray:
    """The clip of ``num_frames`` indices ``stride`` apart centred in the video."""
    start = max(num_video - _span(num_frames, stride), 0) // 2
    return _fit(start + stride * np.arange(num_frames, dtype=np.int64), num_video, short)


def uniform_clips(
    num_video: int, num_frames: int, stride: int = 1, num_clips: int = 1, *, short: str = "loop"
) -> list[np.ndarray]:
    """``num_clips`` clips with evenly spaced starts covering the video (test-time multi-clip).

    With one clip this is :func:`center_clip`.
    """
    if num_clips == 1:
        return [center_clip(num_video, num_frames, stride, short=short)]
    last_start = max(num_video - _span(num_frames, stride), 0)
    starts = np.linspace(0, last_start, num_clips).round().astype(np.int64)
    base = stride * np.arange(num_frames, dtype=np.int64)
    return [_fit(s + base, num_video, short) for s in starts]


def segment_indices(
    num_video: int,
    num_segments: int,
    *,
    random: bool,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Segment-based sampling (TSN): split the video into ``num_segments`` equal parts, one frame each.

    Args:
        num_video: frames in the video.
        num_segments: frames to return.
        random: draw a random frame inside each segment (training) instead of its centre (eval).

    Returns:
        ``(num_segments,)`` int64 indices, non-decreasing. Videos with fewer frames than segments
        repeat frames.
    """
    if num_video < 1:
        raise ValueError("cannot sample from a video with no frames")
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    edges = np.linspace(0, num_video, num_segments + 1)
    if random:
        offsets = torch.rand(num_segments, generator=generator, dtype=torch.float64).numpy()
    else:
        offsets = np.full(num_segments, 0.5)
    idx = np.floor(edges[:-1] + offsets * (edges[1:] - edges[:-1])).astype(np.int64)
    return np.clip(idx, 0, num_video - 1)
