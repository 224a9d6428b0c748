"""Video reading, probing and writing with PyAV (and OpenCV for folders of image frames).

Frames move through lowres-har as ``uint8`` numpy arrays of shape ``(T, H, W, 3)`` in RGB order,
whatever the source pixel format (gray, yuv444p, rgba, 10-bit, palette, ...).

Rules this module follows:

- Frame counts come from decoding, never from container headers (Matroska/Ogg headers report 0 and
  some AVI headers, e.g. HMDB51's, one frame too many).
- Frame ranges are half-open ``[start, end)``, in frame indices or, with ``unit="seconds"``, in
  seconds of decoded presentation time (so variable-frame-rate files work); decoding stops as soon
  as the requested frames are in hand.
- A display-matrix rotation (phone videos) is applied by default so frames come out upright; the
  angle is reported in :class:`VideoMetadata`.
- Bad files (missing, empty, junk, no video stream, truncated, corrupt) raise
  :class:`VideoDecodeError` naming the file and the cause. A file that decodes for a while and then
  fails raises too, naming the frame reached, unless the caller passes ``allow_partial=True``: then
  the frames decoded before the failure are returned, a warning goes to the ``"lowres_har"``
  logger and ``metadata.complete`` is ``False``.
- A folder of image frames (``.jpg``/``.jpeg``/``.png``/``.bmp``, natural order: ``img2`` before
  ``img10``) is a video too; its frame rate is whatever the caller says (``fps=``) or 0.
"""

from __future__ import annotations

import heapq
import logging
import operator
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "VideoDecodeError",
    "VideoMetadata",
    "frame_files",
    "probe_video",
    "read_video",
    "write_video",
]

log = logging.getLogger("lowres_har")

#: File suffixes (lower case) that count as frames of a frame-folder video.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

#: How far a stream may fall short of its header before it counts as truncated: one frame (HMDB51
#: AVI headers list one frame too many) plus this fraction of the header's claim.
_TRUNCATION_TOLERANCE = 0.05

#: Decoder options for counting frames: pixels are not needed, so skip the costly filters. They do
#: not change how many frames come out.
_FAST_DECODE = {"skip_loop_filter": "all", "skip_idct": "all"}


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded; the message names the file and the cause."""


@dataclass(frozen=True)
class VideoMetadata:
    """What :func:`read_video` or :func:`probe_video` learned about a video.

    Attributes:
        path: the file or frame folder.
        fps: average frame rate in frames per second (0.0 when unknown; for a frame folder the
            ``fps`` the caller gave, else 0.0).
        num_frames: frames decoded. This is the video's exact length when ``complete`` is True; a
            read that stopped early (it had the frames it needed) decoded only a prefix. Exception:
            ``probe_video(..., count_frames=False)`` puts the header's (possibly wrong) estimate
            here. For a frame folder, the number of image files.
        height: frame height in pixels, as returned (after applying ``rotation`` if asked to).
        width: frame width in pixels, as returned.
        duration: seconds covered by the decoded frames, from the first frame's presentation time
            to the end of the last one (for constant frame rate, ``num_frames / fps``); 0.0 when
            timing is unknown.
        complete: ``num_frames`` is the video's exact frame count (decoding reached the end of
            the stream, or a frame folder's file count).
        header_frames: the frame count the container header claims (0 when it does not say).
        rotation: display-matrix rotation in degrees, counter-clockwise (90, -90, 180 or 0), as
            PyAV's ``VideoFrame.rotation`` reports it.
        rotation_applied: the returned frames (and ``height``/``width``) have ``rotation`` applied.
        pix_fmt: the source pixel format (``"yuv420p"``, ``"gray"``, ...; for frame folders the
            first image's layout, e.g. ``"bgr24"``).
        codec: the video codec name (``"h264"``, ``"mpeg4"``, ...; ``"png"``, ``"jpeg"`` or
            ``"bmp"`` for frame folders).
        start_time: presentation time of the first frame in seconds; ``timestamps`` count from it.
        timestamps: presentation time in seconds (relative to ``start_time``) of each returned
            frame; for :func:`probe_video`, of every decoded frame. Empty when the source has no
            timing (a frame folder without ``fps``).
        frame_indices: absolute frame index of each returned frame (empty for :func:`probe_video`).
    """

    path: str
    fps: float
    num_frames: int
    height: int
    width: int
    duration: float
    complete: bool = True
    header_frames: int = 0
    rotation: int = 0
    rotation_applied: bool = False
    pix_fmt: str = ""
    codec: str = ""
    start_time: float = 0.0
    timestamps: tuple[float, ...] = ()
    frame_indices: tuple[int, ...] = ()


# ---------------------------------------------------------------------------------------------
# Frame selection
# ---------------------------------------------------------------------------------------------


class _Selection:
    """Which frames to keep, given each decoded frame's index and relative time in order."""

    def __init__(
        self,
        start: float | None,
        end: float | None,
        num_frames: int | None,
        stride: int,
        indices: Sequence[int] | None,
        unit: str,
    ) -> None:
        if unit not in ("frames", "seconds"):
            raise ValueError(f"unit must be 'frames' or 'seconds', got {unit!r}")
        self.unit = unit
        self.wanted: set[int] | None = None
        self.order: list[int] | None = None
        if indices is not None:
            if start is not None or end is not None or num_frames is not None or stride != 1:
                raise ValueError(
                    "indices= cannot be combined with start, end, num_frames or stride"
                )
            if unit != "frames":
                raise ValueError("indices= are frame indices; use unit='frames'")
            self.order = [operator.index(i) for i in indices]
            self.wanted = set(self.order)
        stride = operator.index(stride)
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if num_frames is not None:
            num_frames = operator.index(num_frames)
            if num_frames < 0:
                raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        if unit == "frames":
            start = 0 if start is None else _frame_index(start, "start")
            end = None if end is None else _frame_index(end, "end")
        else:
            start = 0.0 if start is None else float(start)
            end = None if end is None else float(end)
            if not np.isfinite(start) or (end is not None and not np.isfinite(end)):
                raise ValueError(f"start and end must be finite seconds, got {start}, {end}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if end is not None and end < start:
            raise ValueError(f"end ({end}) must be >= start ({start})")
        self.start = start
        self.end = end
        self.num_frames = num_frames
        self.stride = stride
        self.kept = 0
        self.in_range = 0  # frames seen inside [start, end) so far (seconds mode)

    @property
    def needs_time(self) -> bool:
        return self.unit == "seconds"

    @property
    def empty(self) -> bool:
        """The request selects no frame at all (``num_frames=0``, ``end == start``, ``[]``)."""
        if self.order is not None:
            return not self.order
        return self.num_frames == 0 or (self.end is not None and self.end == self.start)

    def last_index(self) -> int | None:
        """The last frame index that can be kept (frames mode), ``None`` when unbounded."""
        if self.order is not None:
            return max(self.order) if self.order else -1
        if self.unit != "frames":
            return None
        start = int(self.start)
        bounds: list[int] = []
        if self.end is not None:  # the last strided index below ``end``
            bounds.append(start + (int(self.end) - 1 - start) // self.stride * self.stride)
        if self.num_frames is not None:
            bounds.append(start + self.stride * (self.num_frames - 1))
        return min(bounds) if bounds else None

    def keep(self, index: int, t: float) -> bool:
        """Should frame ``index`` (at ``t`` seconds after the first frame) be returned?"""
        if self.empty:
            return False
        if self.wanted is not None:
            return index in self.wanted
        if self.num_frames is not None and self.kept >= self.num_frames:
            return False
        if self.unit == "frames":
            ok = (
                index >= self.start
                and (self.end is None or index < self.end)
                and (index - int(self.start)) % self.stride == 0
            )
        else:
            ok = False
            if t >= self.start and (self.end is None or t < self.end):
                ok = self.in_range % self.stride == 0
                self.in_range += 1
        if ok:
            self.kept += 1
        return ok

    def done(self, index: int, t: float) -> bool:
        """Nothing after frame ``index`` can be kept: decoding may stop."""
        if self.empty:
            return True
        if self.num_frames is not None and self.order is None and self.kept >= self.num_frames:
            return True
        if self.unit == "frames":
            last = self.last_index()
            return last is not None and index >= last
        return self.end is not None and t >= self.end

    def describe(self) -> str:
        if self.order is not None:
            return f"indices {self.order[:8]}{'...' if len(self.order) > 8 else ''}"
        unit = "s" if self.unit == "seconds" else ""
        end = "end" if self.end is None else f"{self.end}{unit}"
        return f"range [{self.start}{unit}, {end}) stride {self.stride}"


def _frame_index(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name}={value!r} is not a frame index; pass an int or use unit='seconds'"
        ) from None


# ---------------------------------------------------------------------------------------------
# Frame folders
# ---------------------------------------------------------------------------------------------


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def frame_files(folder: str | Path) -> list[Path]:
    """The image frames of a frame-folder video, in natural order (``img2`` before ``img10``).

    Args:
        folder: a directory holding one image per frame (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``;
            other files are ignored).

    Returns:
        The image paths in frame order.

    Raises:
        VideoDecodeError: the folder is missing, holds no images, or mixes image types (which
            would make the frame order ambiguous).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoDecodeError(f"{folder}: no such folder")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not files:
        raise VideoDecodeError(
            f"{folder}: no image frames ({'/'.join(s[1:] for s in IMAGE_SUFFIXES)}) in folder"
        )
    kinds = {_image_codec(p) for p in files}
    if len(kinds) > 1:
        raise VideoDecodeError(f"{folder}: mixed image types {sorted(kinds)}; frame order unclear")
    files.sort(key=lambda p: (_natural_key(p.name), p.name))
    return files


def _image_codec(path: Path) -> str:
    suffix = path.suffix.lower()
    return "jpeg" if suffix in (".jpg", ".jpeg") else suffix[1:]


def _image_pix_fmt(img: np.ndarray) -> str:
    deep = img.dtype == np.uint16
    if img.ndim == 2 or img.shape[2] == 1:
        return "gray16" if deep else "gray"
    if img.shape[2] == 4:
        return "bgra64" if deep else "bgra"
    return "bgr48" if deep else "bgr24"


def _read_image(path: Path, apply_rotation: bool) -> np.ndarray:
    flags = cv2.IMREAD_COLOR if apply_rotation else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    img = cv2.imread(str(path), flags)
    if img is None:
        raise VideoDecodeError(f"{path}: cannot read image (corrupt or unsupported)")
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _folder_meta(
    folder: Path,
    files: list[Path],
    first: np.ndarray,
    fps: float,
    *,
    timestamps: tuple[float, ...] = (),
    indices: tuple[int, ...] = (),
    apply_rotation: bool,
) -> VideoMetadata:
    raw = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED)
    n = len(files)
    return VideoMetadata(
        path=str(folder),
        fps=fps,
        num_frames=n,
        height=int(first.shape[0]),
        width=int(first.shape[1]),
        duration=n / fps if fps > 0 else 0.0,
        complete=True,
        header_frames=n,
        rotation=0,
        rotation_applied=apply_rotation,
        pix_fmt=_image_pix_fmt(raw) if raw is not None else "",
        codec=_image_codec(files[0]),
        start_time=0.0,
        timestamps=timestamps,
        frame_indices=indices,
    )


def _check_fps(fps: float | None, path: Path) -> float:
    if fps is None:
        return 0.0
    fps = float(fps)
    if not np.isfinite(fps) or fps < 0:
        raise ValueError(f"{path}: fps must be a finite number >= 0, got {fps}")
    return fps


def _read_folder(
    folder: Path,
    sel: _Selection,
    fps: float,
    apply_rotation: bool,
    allow_partial: bool,
) -> tuple[np.ndarray, VideoMetadata]:
    files = frame_files(folder)
    n = len(files)
    if sel.needs_time and fps <= 0:
        raise ValueError(f"{folder}: unit='seconds' needs the frame folder's fps= (got none)")
    picks: list[int] = []
    if sel.order is not None:
        bad = [i for i in sel.order if not 0 <= i < n]
        if bad:
            raise VideoDecodeError(f"{folder}: frame index {bad[0]} out of range ({n} frames)")
        picks = list(sel.order)
    else:
        for i in range(n):
            t = i / fps if fps > 0 else 0.0
            if sel.keep(i, t):
                picks.append(i)
            if sel.done(i, t):
                break
    if not picks and not sel.empty:
        raise VideoDecodeError(f"{folder}: {sel.describe()} selects no frame ({n} frames)")
    first = _read_image(files[0], apply_rotation)
    cache: dict[int, np.ndarray] = {0: first}
    frames: list[np.ndarray] = []
    got: list[int] = []
    for i in picks:
        if i not in cache:
            try:
                img = _read_image(files[i], apply_rotation)
                if img.shape != first.shape:
                    raise VideoDecodeError(
                        f"{files[i]}: frame {i} is {img.shape[1]}x{img.shape[0]} but frame 0 of "
                        f"{folder} is {first.shape[1]}x{first.shape[0]} (W x H)"
                    )
            except VideoDecodeError as err:
                if not allow_partial or not frames or sel.order is not None:
                    raise
                log.warning(
                    "%s; returning the %d frames read before it (allow_partial=True)",
                    err,
                    len(frames),
                )
                break
            cache[i] = img
        frames.append(cache[i])
        got.append(i)
    h, w = first.shape[:2]
    out = np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)
    stamps = tuple(i / fps for i in got) if fps > 0 else ()
    meta = _folder_meta(
        folder,
        files,
        first,
        fps,
        timestamps=stamps,
        indices=tuple(got),
        apply_rotation=apply_rotation,
    )
    return out, meta


# ---------------------------------------------------------------------------------------------
# Video files
# ---------------------------------------------------------------------------------------------


def _open(path: Path) -> Any:
    if not path.exists():
        raise VideoDecodeError(f"{path}: no such file")
    if not path.is_file():
        raise VideoDecodeError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: file is empty")
    try:
        return av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as err:
        raise VideoDecodeError(f"{path}: cannot open container ({err})") from err


def _video_stream(container: Any, path: Path) -> Any:
    attached = av.stream.Disposition.attached_pic
    videos = [s for s in container.streams.video if not s.disposition & attached]
    if not videos:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        what = "only cover art" if container.streams.video else f"streams: {', '.join(kinds)}"
        raise VideoDecodeError(f"{path}: no video stream ({what})")
    return videos[0]


def _rate(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return float(rate)
    return 0.0


def _tag_seconds(value: str | None) -> float | None:
    """Parse a Matroska ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``)."""
    if not value:
        return None
    m = re.fullmatch(r"\s*(\d+):(\d+):(\d+(?:\.\d*)?)\s*", value)
    if m is None:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _header_seconds(container: Any, stream: Any) -> float | None:
    """The video stream's duration according to the container, when it says."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tagged = _tag_seconds(stream.metadata.get("DURATION"))
    if tagged:
        return tagged
    if container.duration and len(container.streams) == 1:
        return float(container.duration) / av.time_base
    return None


def _truncation(
    container: Any, stream: Any, packets: int, end_time: float | None, fps: float
) -> str | None:
    """Why a stream that reached its end looks cut short, or ``None`` when it looks whole."""
    claimed = int(stream.frames or 0)
    if claimed > 0:
        if packets < claimed - 1 - int(claimed * _TRUNCATION_TOLERANCE):
            return f"stream ends after {packets} packets but the header lists {claimed} frames"
        return None
    # No frame count in the header (Matroska, Ogg, WebM): compare times instead.
    expected = _tag_seconds(stream.metadata.get("DURATION"))
    if expected is None and container.duration and len(container.streams) == 1:
        expected = float(container.duration) / av.time_base
    if expected and end_time is not None:
        slack = expected * _TRUNCATION_TOLERANCE + (2.0 / fps if fps > 0 else 0.0)
        if end_time < expected - slack:
            return f"stream ends at {end_time:.3f} s but the header says {expected:.3f} s"
    return None


class _Failure(Exception):
    """Decoding stopped before the end of the stream; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _FileDecoder:
    """Decode one video stream frame by frame, turning every failure into :class:`_Failure`."""

    def __init__(self, path: Path, *, fast: bool) -> None:
        self.path = path
        self.container = _open(path)
        try:
            self.stream = _video_stream(self.container, path)
            self.stream.thread_type = "AUTO"
            if fast:
                self.stream.codec_context.options = dict(_FAST_DECODE)
        except BaseException:
            self.container.close()
            raise
        # A demuxer that keeps producing packets without consuming the file is broken; stop it.
        self.max_packets = path.stat().st_size + 10_000
        self.packets = 0
        self.fps = _rate(self.stream)

    def close(self) -> None:
        self.container.close()

    def frames(self) -> Any:
        """Yield decoded ``av.VideoFrame`` s; raise :class:`_Failure` when the stream breaks."""
        stream = self.stream
        try:
            for packet in self.container.demux(stream):
                if packet.size == 0 and packet.dts is None:  # end of stream: flush the decoder
                    yield from stream.decode(None)
                    continue
                self.packets += 1
                if self.packets > self.max_packets:
                    raise _Failure("the demuxer does not advance through the file")
                if packet.is_corrupt:
                    yield from self._drain()
                    raise _Failure("corrupt packet (truncated or damaged file)")
                yield from stream.decode(packet)
        except av.FFmpegError as err:
            yield from self._drain()
            raise _Failure(str(err)) from err

    def _drain(self) -> Any:
        try:
            yield from self.stream.decode(None)
        except av.FFmpegError:
            return


def _to_rgb(frame: Any, size: tuple[int, int], k: int, path: Path, index: int) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` RGB of ``frame`` at ``size`` ``(H, W)``, rotated ``k`` quarter turns
    counter-clockwise."""
    h, w = size
    try:
        # One swscale thread: faster here than its own thread pool on small frames, and data
        # loaders already run one decoder per worker process.
        img = frame.to_ndarray(format="rgb24", width=w, height=h, threads=1)
    except (av.FFmpegError, ValueError) as err:
        raise VideoDecodeError(
            f"{path}: cannot convert frame {index} ({frame.format.name}) to RGB ({err})"
        ) from err
    return np.rot90(img, k) if k else img


#: Decoded frames whose times are held back to undo timestamp shuffles (see :class:`_Scan`).
_REORDER_WINDOW = 8

#: Containers that store real presentation timestamps (so decoded pts are already in order).
_TRUSTED_PTS = frozenset({"mov", "mp4", "matroska", "webm", "mpegts", "ogg", "flv"})


class _Scan:
    """Walk the decoded frames of one file, assign presentation times, keep the selected frames.

    Decoders return frames in presentation order, but some containers (B-frames in AVI, raw
    elementary streams) carry decode-order timestamps, so the decoded frames' ``pts`` come out
    shuffled inside the reorder window (e.g. 1, 2, 4, 3, 6, 5). The sorted ``pts`` are the right
    presentation times: for such streams a min-heap holds the last :data:`_REORDER_WINDOW` times
    and hands the smallest to the oldest frame still waiting (so a read that stops early decodes
    up to that many frames more). Streams without B-frames and containers that store presentation
    times (:data:`_TRUSTED_PTS`) use their ``pts`` as they come.

    In frames mode the keep/stop decisions do not need times and are made as each frame arrives;
    in seconds mode (and for probing) they wait until the frame's time is settled.
    """

    def __init__(
        self,
        path: Path,
        stream: Any,
        fps: float,
        sel: _Selection | None,
        *,
        apply_rotation: bool,
        first_only: bool,
    ) -> None:
        self.path = path
        self.sel = sel
        self.apply_rotation = apply_rotation
        self.first_only = first_only
        self.tb: Fraction = stream.time_base or Fraction(0)
        # Without B-frames output order is decode order, and containers with real presentation
        # timestamps need no repair either: then no frame is held back.
        formats = set(stream.container.format.name.split(","))
        shuffled = stream.codec_context.has_b_frames and not formats & _TRUSTED_PTS
        self.window = _REORDER_WINDOW if shuffled else 0
        self.closing = False  # frames mode: every frame is chosen, waiting for their times
        self.step = 1 / Fraction(fps).limit_denominator(100_000) if fps > 0 else None
        self.n = 0  # frames decoded
        self.first: Any = None
        self.size = (0, 0)
        self.rot_k = 0
        self.resized = False
        self.timed = True
        self.heap: list[Fraction] = []
        self.waiting: deque[tuple[int, Any]] = deque()  # frames whose time is not settled yet
        self.prev: Fraction | None = None  # previous frame's raw time
        self.t0: Fraction | None = None  # the first settled time: timestamps count from it
        self.end: Fraction | None = None  # latest raw time + that frame's duration
        self.frames: list[np.ndarray] = []
        self.kept: list[int] = []
        self.stamp_of: dict[int, float] = {}  # frames mode: times of kept frames, by index
        self.stamps: list[float] = []  # seconds mode / probing: times in settling order
        self.stopped = False

    def _raw_time(self, frame: Any) -> Fraction:
        if frame.pts is not None and self.tb > 0:
            return frame.pts * self.tb
        if self.step is None:
            self.timed = False
            return Fraction(self.n)
        return self.prev + self.step if self.prev is not None else self.n * self.step

    def _first(self, frame: Any) -> None:
        self.first = frame
        self.size = (frame.height, frame.width)
        self.rot_k = round(frame.rotation / 90) % 4 if self.apply_rotation else 0
        if frame.pts is None and self.step is None:
            self.timed = False
        if self.sel is not None and self.sel.needs_time and not self.timed:
            raise VideoDecodeError(
                f"{self.path}: the stream has neither timestamps nor a frame rate; "
                "unit='seconds' cannot work"
            )

    def add(self, frame: Any) -> bool:
        """Take the next decoded frame; ``True`` when decoding can stop."""
        index = self.n
        if self.first is None:
            self._first(frame)
        elif (frame.height, frame.width) != self.size and not self.resized:
            self.resized = True
            log.warning(
                "%s: frame %d is %dx%d but the stream started at %dx%d (W x H); "
                "resizing such frames to the first size",
                self.path,
                index,
                frame.width,
                frame.height,
                self.size[1],
                self.size[0],
            )
        t = self._raw_time(frame)
        self.prev = t
        if frame.duration and self.tb > 0:
            dur = frame.duration * self.tb
        else:
            dur = self.step or Fraction(0)
        if self.end is None or t + dur > self.end:
            self.end = t + dur
        self.n += 1
        sel = self.sel if self.sel is not None and not self.sel.needs_time else None
        if sel is not None and not self.closing and sel.keep(index, 0.0):  # frames mode
            self.frames.append(self._rgb(frame, index))
            self.kept.append(index)
        heapq.heappush(self.heap, t)
        held = frame if self.sel is not None and self.sel.needs_time else None
        self.waiting.append((index, held))  # the frame itself only while a decision waits
        if len(self.heap) > self.window and self._settle(heapq.heappop(self.heap)):
            return True
        if sel is not None and (self.closing or sel.done(index, 0.0)):
            # Stop once the kept frames' times are settled (at most ``window`` frames later).
            self.closing = True
            return not self.kept or not self.waiting or self.waiting[0][0] > self.kept[-1]
        return self.first_only

    def finish(self) -> None:
        """Settle the times of the frames still waiting (end of stream, stop or failure)."""
        while self.heap and not self.stopped:
            self._settle(heapq.heappop(self.heap))

    def _settle(self, t: Fraction) -> bool:
        index, frame = self.waiting.popleft()
        if self.t0 is None:
            self.t0 = t
        rel = float(t - self.t0)
        sel = self.sel
        if sel is None:
            self.stamps.append(rel)
        elif not sel.needs_time:
            self.stamp_of[index] = rel
        else:
            if sel.keep(index, rel):
                self.frames.append(self._rgb(frame, index))
                self.kept.append(index)
                self.stamps.append(rel)
            if sel.done(index, rel):
                self.stopped = True
        return self.stopped

    def _rgb(self, frame: Any, index: int) -> np.ndarray:
        return _to_rgb(frame, self.size, self.rot_k, self.path, index)

    def timestamps(self) -> tuple[float, ...]:
        """Times of the returned frames (of every settled frame when probing)."""
        if not self.timed:
            return ()
        if self.sel is not None and not self.sel.needs_time:
            return tuple(self.stamp_of[i] for i in self.kept if i in self.stamp_of)
        return tuple(self.stamps)

    def start_time(self) -> float:
        return float(self.t0) if self.timed and self.t0 is not None else 0.0

    def duration(self) -> float:
        if not self.timed or self.t0 is None or self.end is None:
            return 0.0
        return float(self.end - self.t0)


def _normal_angle(degrees: int) -> int:
    """An angle in ``(-180, 180]`` (FFmpeg may say -180 for a half turn)."""
    degrees %= 360
    return degrees - 360 if degrees > 180 else degrees


def _decode_file(
    path: Path,
    sel: _Selection | None,
    *,
    apply_rotation: bool,
    allow_partial: bool,
    first_only: bool = False,
) -> tuple[list[np.ndarray], VideoMetadata]:
    """Decode ``path`` keeping what ``sel`` selects (nothing when ``sel`` is None: probing)."""
    dec = _FileDecoder(path, fast=sel is None)
    stream = dec.stream
    scan = _Scan(path, stream, dec.fps, sel, apply_rotation=apply_rotation, first_only=first_only)
    failure: str | None = None
    reached_end = False
    try:
        try:
            for frame in dec.frames():
                if scan.add(frame):
                    break
            else:
                reached_end = True
        except _Failure as err:
            failure = f"decoding failed at frame {scan.n} ({err.reason})"
        scan.finish()
        if reached_end:
            if scan.n == 0:
                end_time: float | None = 0.0
            else:
                end_time = float(scan.end) if scan.end is not None and scan.timed else None
            why = _truncation(dec.container, stream, dec.packets, end_time, dec.fps)
            if why is not None:
                failure = f"file looks truncated at frame {scan.n}: {why}"
                reached_end = False
        codec = stream.codec_context.name or ""
        header_frames = int(stream.frames or 0)
        header_seconds = _header_seconds(dec.container, stream)
    finally:
        dec.close()
    first = scan.first
    if first is None:
        raise VideoDecodeError(f"{path}: no decodable video frames ({failure or 'empty stream'})")
    if failure is not None:
        if not allow_partial:
            raise VideoDecodeError(
                f"{path}: {failure}; pass allow_partial=True to keep the frames decoded before it"
            )
        log.warning(
            "%s: %s; keeping the %d frames decoded before it (allow_partial=True)",
            path,
            failure,
            scan.n,
        )
    h, w = scan.size
    if scan.rot_k % 2:
        h, w = w, h
    num = scan.n
    duration = scan.duration()
    if first_only and not reached_end:
        # probing without counting: the header's estimate, flagged by complete=False.
        num = header_frames or (round(header_seconds * dec.fps) if header_seconds else 0)
        duration = header_seconds or (num / dec.fps if dec.fps > 0 else 0.0)
    meta = VideoMetadata(
        path=str(path),
        fps=dec.fps,
        num_frames=num,
        height=h,
        width=w,
        duration=duration,
        complete=reached_end,
        header_frames=header_frames,
        rotation=_normal_angle(int(first.rotation)),
        rotation_applied=bool(apply_rotation),
        pix_fmt=first.format.name,
        codec=codec,
        start_time=scan.start_time(),
        timestamps=scan.timestamps(),
        frame_indices=tuple(scan.kept),
    )
    return scan.frames, meta


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def read_video(
    path: str | Path,
    start: float | None = None,
    end: float | None = None,
    num_frames: int | None = None,
    stride: int = 1,
    *,
    indices: Sequence[int] | None = None,
    unit: Literal["frames", "seconds"] = "frames",
    fps: float | None = None,
    apply_rotation: bool = True,
    allow_partial: bool = False,
) -> tuple[np.ndarray, VideoMetadata]:
    """Decode a video file (or a folder of image frames) into RGB frames.

    Frames are chosen in two steps: the half-open range ``[start, end)`` (frame indices, or
    seconds of presentation time after the first frame with ``unit="seconds"``), then every
    ``stride``-th frame of that range counting from its first frame, at most ``num_frames`` of
    them. Decoding stops as soon as the chosen frames are in hand; only those are converted to
    RGB. Like a Python slice, a range may run past the last frame; it must select at least one
    frame unless it is empty on purpose (``end == start`` or ``num_frames=0``).

    Args:
        path: any file PyAV/FFmpeg reads (mp4, avi, mkv, webm, ...) or a folder of frames
            (see :func:`frame_files`).
        start: first frame index (int) or first second (``unit="seconds"``); default 0.
        end: end of the range, excluded; default the end of the video.
        num_frames: at most this many frames; default no limit.
        stride: keep every ``stride``-th frame of the range (>= 1).
        indices: instead of a range, these absolute frame indices (0-based, any order, repeats
            allowed); ``T == len(indices)``. Cannot be combined with the range arguments.
        unit: ``"frames"`` or ``"seconds"`` for ``start``/``end``. Seconds use the decoded
            presentation timestamps, so variable-frame-rate files select by real time.
        fps: frame rate of a frame folder (needed for ``unit="seconds"``); ignored for files,
            whose rate comes from the stream.
        apply_rotation: turn frames upright according to the display-matrix rotation (phone
            videos); the angle is reported either way.
        allow_partial: when the file breaks mid-stream (corrupt packet, truncation), return the
            frames decoded before the break with a warning on the ``"lowres_har"`` logger instead
            of raising. Requested ``indices`` past the break still raise.

    Returns:
        ``(frames, metadata)``: ``frames`` is ``uint8`` ``(T, H, W, 3)`` RGB; ``metadata`` is a
        :class:`VideoMetadata` whose ``timestamps`` (seconds) and ``frame_indices`` describe the
        returned frames and whose ``num_frames`` counts the frames decoded (the file's length
        when ``metadata.complete``).

    Raises:
        VideoDecodeError: the file is missing, empty, unreadable, has no video stream, breaks
            mid-stream (the message names the frame reached), or the request selects a frame
            past the end (an index out of range, a ``start`` after the last frame).
        ValueError, TypeError: inconsistent arguments (e.g. ``indices`` with ``start``, a
            negative ``stride``, a float ``start`` with ``unit="frames"``).
    """
    p = Path(path)
    sel = _Selection(start, end, num_frames, stride, indices, unit)
    if p.is_dir():
        return _read_folder(p, sel, _check_fps(fps, p), apply_rotation, allow_partial)
    frames, meta = _decode_file(p, sel, apply_rotation=apply_rotation, allow_partial=allow_partial)
    size = (meta.height, meta.width, 3)
    if sel.order is not None:
        bad = [i for i in sel.order if not 0 <= i < meta.num_frames]
        if bad:
            raise VideoDecodeError(
                f"{p}: frame index {bad[0]} out of range (decoded {meta.num_frames} frames"
                f"{'' if meta.complete else ' before stopping'})"
            )
        by_index = dict(zip(meta.frame_indices, frames, strict=True))
        stamp = dict(zip(meta.frame_indices, meta.timestamps, strict=False))
        frames = [by_index[i] for i in sel.order]
        meta = replace(
            meta,
            frame_indices=tuple(sel.order),
            timestamps=tuple(stamp[i] for i in sel.order) if meta.timestamps else (),
        )
    elif not frames and not sel.empty:
        raise VideoDecodeError(
            f"{p}: {sel.describe()} selects no frame (the video has {meta.num_frames} frames, "
            f"{meta.duration:.3f} s)"
        )
    out = np.stack(frames) if frames else np.zeros((0, *size), np.uint8)
    return out, meta


def probe_video(
    path: str | Path,
    count_frames: bool = True,
    *,
    fps: float | None = None,
    apply_rotation: bool = True,
    allow_partial: bool = False,
) -> VideoMetadata:
    """Describe a video without converting frames to arrays.

    With ``count_frames`` every frame is decoded (with the decoder's loop filter and IDCT skipped:
    the pixels are not needed) so that ``num_frames`` and ``timestamps`` are exact whatever the
    header claims. Without it only the first frame is decoded (for size, pixel format and
    rotation) and ``num_frames``/``duration`` are the header's estimates, with
    ``complete=False``.

    For a frame folder the frame count is the number of image files; only the first image is
    read.

    Args:
        path: a video file or a folder of frames.
        count_frames: decode the whole stream to count frames exactly.
        fps: frame rate of a frame folder (ignored for files).
        apply_rotation: report ``height``/``width`` as :func:`read_video` returns them by default
            (upright).
        allow_partial: a file that breaks mid-stream returns the count reached (with a warning,
            ``complete=False``) instead of raising.

    Returns:
        A :class:`VideoMetadata`; ``timestamps`` holds every decoded frame's time in seconds.

    Raises:
        VideoDecodeError: as :func:`read_video`.
    """
    p = Path(path)
    if p.is_dir():
        files = frame_files(p)
        rate = _check_fps(fps, p)
        first = _read_image(files[0], apply_rotation)
        stamps = tuple(i / rate for i in range(len(files))) if rate > 0 else ()
        return _folder_meta(p, files, first, rate, timestamps=stamps, apply_rotation=apply_rotation)
    _, meta = _decode_file(
        p,
        None,
        apply_rotation=apply_rotation,
        allow_partial=allow_partial,
        first_only=not count_frames,
    )
    return meta


def write_video(
    path: str | Path,
    frames: np.ndarray,
    *,
    fps: float = 25.0,
    codec: str = "h264",
    crf: int = 18,
    bitexact: bool = True,
) -> Path:
    """Encode ``uint8`` RGB frames ``(T, H, W, 3)`` to a video file.

    H.264 and MPEG-4 need even sizes; odd heights/widths are padded by one edge row/column (MJPEG
    keeps odd sizes). Encoding is single-threaded and the muxer runs in bit-exact mode (no random
    container IDs or version strings).

    Args:
        path: output file; the container follows the suffix (``.mp4``, ``.avi``, ``.mkv``).
        frames: ``uint8`` array ``(T, H, W, 3)`` with ``T >= 1``.
        fps: frame rate written to the stream (frames per second, > 0).
        codec: ``"h264"`` (libx264, yuv420p), ``"mpeg4"`` or ``"mjpeg"``.
        crf: H.264 constant rate factor (lower is higher quality).
        bitexact: make equal frames give equal bytes on every run. libx264's hand-written SIMD
            (its AVX-512 paths on the CPUs we test on) gives run-to-run different bitstreams for
            the same frames, so with ``True`` x264 runs its portable C code (``asm=0``; encoding
            is about 3x slower: ~80 ms instead of ~27 ms for 48 frames of 112x112) and the
            MPEG-4 / MJPEG encoders get FFmpeg's bit-exact flag. ``False`` encodes faster and
            the bytes (and so the decoded pixels) may differ between runs.

    Returns:
        The written path.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(
            f"{path}: expected uint8 frames (T, H, W, 3) with T >= 1, "
            f"got {frames.dtype} {frames.shape}"
        )
    if not fps > 0:
        raise ValueError(f"{path}: fps must be > 0, got {fps}")
    if codec not in ("h264", "mpeg4", "mjpeg"):
        raise ValueError(f"unknown codec {codec!r}; use 'h264', 'mpeg4' or 'mjpeg'")
    if codec in ("h264", "mpeg4") and (frames.shape[1] % 2 or frames.shape[2] % 2):
        frames = np.pad(
            frames,
            ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)),
            mode="edge",
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    # bitexact: no random Matroska UIDs or version strings, so equal frames give equal bytes.
    with av.open(str(path), mode="w", container_options={"fflags": "+bitexact"}) as container:
        if codec == "h264":
            stream = container.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            options: dict[str, object] = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
            if bitexact:
                options["x264-params"] = "asm=0"
            stream.options = options
        elif codec == "mpeg4":
            stream = container.add_stream("mpeg4", rate=rate)
            stream.pix_fmt = "yuv420p"
        else:
            stream = container.add_stream("mjpeg", rate=rate)
            stream.pix_fmt = "yuvj420p"
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.thread_count = 1
        if bitexact and codec != "h264":
            stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
