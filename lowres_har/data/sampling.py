"""Temporal sampling: which frame indices of a video form a clip.

Every function returns ``int64`` numpy arrays of frame indices into a video of ``num_video``
frames. Videos shorter than the clip span are handled by the ``short`` policy:

* ``"loop"``: indices wrap around (the action repeats);
* ``"repeat_last"``: indices past the end repeat the last frame;
* ``"pad"``: indices past the end are ``-1``; :func:`gather_frames` turns them into black frames.

Index arrays may therefore contain ``-1`` under ``"pad"``: gather frames with
:func:`gather_frames`, never with plain ``frames[indices]`` (which would read the last frame).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "SHORT_POLICIES",
    "center_clip",
    "gather_frames",
    "random_clip",
    "segment_indices",
    "sliding_windows",
    "uniform_clips",
]

#: Values of ``short``: how a video shorter than the clip span is filled.
SHORT_POLICIES = ("loop", "repeat_last", "pad")


def _fit(indices: np.ndarray, num_video: int, short: str) -> np.ndarray:
    if num_video < 1:
        raise ValueError("cannot sample from a video with no frames")
    if short == "loop":
        return indices % num_video
    if short == "repeat_last":
        return np.minimum(indices, num_video - 1)
    if short == "pad":
        return np.where(indices < num_video, indices, -1)
    raise ValueError(f"short must be one of {SHORT_POLICIES}, got {short!r}")


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


def gather_frames(frames: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``frames[indices]`` with a zero (black) frame wherever the index is ``-1``.

    Args:
        frames: ``(N, H, W, C)`` decoded video (any dtype).
        indices: ``(T,)`` integer indices in ``[-1, N)``; ``-1`` marks padding (``short="pad"``).

    Returns:
        ``(T, H, W, C)``, a new array of ``frames.dtype``.
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
    if frames.ndim < 1:
        raise ValueError(f"frames must have a leading time axis, got shape {frames.shape}")
    num = frames.shape[0]
    bad = (idx < -1) | (idx >= num)
    if bad.any():
        raise IndexError(
            f"frame indices {idx[bad][:5].tolist()} out of range for a video of {num} frames "
            "(valid: 0..N-1, or -1 for padding)"
        )
    pad = idx < 0
    if not pad.any():
        return frames[idx]
    if num == 0:
        return np.zeros((len(idx), *frames.shape[1:]), dtype=frames.dtype)
    out = frames[np.where(pad, 0, idx)]
    out[pad] = 0
    return out


def sliding_windows(
    num_video: int,
    num_frames: int,
    stride: int = 1,
    step: int | None = None,
    *,
    short: str = "loop",
) -> list[tuple[np.ndarray, int, int]]:
    """Windows over the whole video for prediction: every frame lies inside at least one window.

    Window ``k`` takes ``num_frames`` indices ``stride`` apart from ``start_k``; starts are
    ``step`` apart and the last window is aligned to the end of the video so the tail is covered
    (it may overlap the previous one more than ``step`` says). A video shorter than one window
    gives a single window filled by the ``short`` policy.

    Args:
        num_video: frames in the video.
        num_frames: frames per window.
        stride: frame step inside a window.
        step: frames between window starts; default the window span
            ``(num_frames - 1) * stride + 1`` (windows touch without overlapping).
        short: policy for a video shorter than one window (see module docstring).

    Returns:
        ``[(indices, start_frame, end_frame), ...]`` in time order: ``indices`` ``(num_frames,)``
        int64, ``[start_frame, end_frame)`` the frames the window spans (end exclusive, clipped to
        the video), for timestamps ``start_frame / fps``.
    """
    if num_video < 1:
        raise ValueError("cannot sample from a video with no frames")
    span = _span(num_frames, stride)
    step = span if step is None else step
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    base = stride * np.arange(num_frames, dtype=np.int64)
    if num_video <= span:
        return [(_fit(base, num_video, short), 0, num_video)]
    last = num_video - span
    starts = list(range(0, last + 1, step))
    if starts[-1] != last:
        starts.append(last)
    return [(s + base, s, s + span) for s in starts]
