"""Video reading and writing with PyAV.

Frames move through lowres-har as ``uint8`` numpy arrays of shape ``(T, H, W, 3)`` in RGB order.
Frame counts come from decoding, never from container headers (Matroska/Ogg headers report 0 and
some AVI headers one frame too many).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

__all__ = ["VideoDecodeError", "VideoMetadata", "read_video", "write_video"]


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded; the message names the file and the cause."""


@dataclass(frozen=True)
class VideoMetadata:
    """What :func:`read_video` learned about a file.

    Attributes:
        path: the file.
        fps: average frame rate in frames per second (0.0 when the container does not say).
        num_frames: frames actually decoded (not the header's claim).
        height: frame height in pixels.
        width: frame width in pixels.
        duration: seconds, ``num_frames / fps`` when fps is known, else 0.0.
    """

    path: str
    fps: float
    num_frames: int
    height: int
    width: int
    duration: float


def _open(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise VideoDecodeError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise VideoDecodeError(f"{p}: file is empty")
    try:
        return av.open(str(p), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise VideoDecodeError(f"{p}: cannot open container ({err})") from err


def read_video(
    path: str | Path, *, indices: Sequence[int] | None = None
) -> tuple[np.ndarray, VideoMetadata]:
    """Decode a video file into RGB frames.

    Args:
        path: any file PyAV/FFmpeg can read (mp4, avi, mkv, webm, ...).
        indices: optional frame indices to keep (0-based, may repeat, any order). Decoding stops
            after the largest requested index. ``None`` keeps every frame.

    Returns:
        ``(frames, metadata)`` where ``frames`` is ``uint8`` ``(T, H, W, 3)``; with ``indices``,
        ``T == len(indices)``. ``metadata.num_frames`` is the number of frames decoded, which is the
        file's full length only when ``indices`` is ``None``.

    Raises:
        VideoDecodeError: the file is missing, empty, has no video stream, fails to decode, or an
            index is past the last frame.
    """
    container = _open(path)
    try:
        if not container.streams.video:
            raise VideoDecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate) if stream.average_rate else 0.0
        last = max(indices) if indices is not None and len(indices) else None
        frames: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if last is not None and len(frames) > last:
                    break
        except av.FFmpegError as err:
            if not frames:
                raise VideoDecodeError(f"{path}: decoding failed ({err})") from err
        if not frames:
            raise VideoDecodeError(f"{path}: no decodable frames")
    finally:
        container.close()
    num = len(frames)
    h, w = frames[0].shape[:2]
    if indices is not None:
        bad = [i for i in indices if i < 0 or i >= num]
        if bad:
            raise VideoDecodeError(
                f"{path}: frame index {bad[0]} out of range (decoded {num} frames)"
            )
        out = (
            np.stack([frames[i] for i in indices])
            if len(indices)
            else np.zeros((0, h, w, 3), np.uint8)
        )
    else:
        out = np.stack(frames)
    meta = VideoMetadata(
        path=str(path),
        fps=fps,
        num_frames=num,
        height=h,
        width=w,
        duration=num / fps if fps > 0 else 0.0,
    )
    return out, meta


def write_video(
    path: str | Path,
    frames: np.ndarray,
    *,
    fps: float = 25.0,
    codec: str = "h264",
    crf: int = 18,
) -> Path:
    """Encode ``uint8`` RGB frames ``(T, H, W, 3)`` to a video file.

    H.264 needs even sizes; odd heights/widths are padded by one edge row/column. Encoding is
    single-threaded so that the same frames always give the same bytes.

    Args:
        path: output file; the container follows the suffix (``.mp4``, ``.avi``, ``.mkv``).
        frames: ``uint8`` array ``(T, H, W, 3)``.
        fps: frame rate written to the stream.
        codec: ``"h264"`` (libx264, yuv420p), ``"mpeg4"`` or ``"mjpeg"``.
        crf: H.264 constant rate factor (lower is higher quality).

    Returns:
        The written path.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"{path}: expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}"
        )
    if codec in ("h264", "mpeg4") and (frames.shape[1] % 2 or frames.shape[2] % 2):
        frames = np.pad(
            frames,
            ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)),
            mode="edge",
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        if codec == "h264":
            stream = container.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        elif codec == "mpeg4":
            stream = container.add_stream("mpeg4", rate=rate)
            stream.pix_fmt = "yuv420p"
        elif codec == "mjpeg":
            stream = container.add_stream("mjpeg", rate=rate)
            stream.pix_fmt = "yuvj420p"
        else:
            raise ValueError(f"unknown codec {codec!r}; use 'h264', 'mpeg4' or 'mjpeg'")
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.thread_count = 1
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
