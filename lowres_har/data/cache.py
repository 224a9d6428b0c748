"""Preprocessing cache: decode every video once, store its degraded views as uint8 arrays.

At 12×16 pixels a whole dataset fits in memory once decoded; decoding an H.264 file per sample
costs far more than the network's forward pass. :func:`build_cache` decodes each video once,
applies the deterministic part of every view (aspect crop/pad, lens blur, area downsampling,
compression artefacts) and writes the frames in chunk files; :class:`VideoCache` memory-maps them
so a DataLoader worker slices clips out of the page cache.

On-disk layout (``DIR``)::

    cache.json               what the cache holds: format, views, chunk size, every video key
    chunks/00000.<view>.npy  uint8 (frames of the chunk's videos, h, w, c), one file per view
                             or stream (c = 3 for views, 2 for flow, 1 for masks)
    chunks/00000.json        per video: offset, frames, fps, source size or the decode error;
                             written last, so its presence marks the chunk complete
    index.json               merged table of all chunks (written once every chunk is complete)
    report.json              the videos that failed to decode, with the cause

Work is split into chunks of ``chunk_size`` consecutive videos (in key order). Every file is
written to a temporary name and renamed into place, so a killed run leaves only whole chunks and
a rerun continues where it stopped; the output of an interrupted-then-resumed run is byte-identical
to an uninterrupted one. ``shard=(i, n)`` processes the chunks ``k`` with ``k % n == i``, so ``n``
machines (or a cluster array job) can split the work into the same folder; the shard that
completes the last chunk writes ``index.json`` and ``report.json`` (a later run of any shard does
too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lowres_har._mp import process_pool
from lowres_har.data.io import VideoDecodeError, read_video

__all__ = [
    "CACHE_FORMAT",
    "CacheReport",
    "VideoCache",
    "build_cache",
    "cache_key",
    "parse_shard",
]

log = logging.getLogger("lowres_har")

#: Version of the on-disk layout; a cache of another format is rejected with a clear message.
CACHE_FORMAT = 1

#: ``uint8 (T, H, W, 3)`` source frames → ``{name: uint8 (T, h, w, c)}``; deterministic.
ViewFn = Callable[[np.ndarray], dict[str, np.ndarray]]


def cache_key(path: str | Path, span: tuple[int, int] | None, base: str | Path) -> str:
    """The key of one video in a cache: its path relative to ``base`` (POSIX separators), plus
    ``#start-end`` when the entry is a frame range of a longer file."""
    rel = Path(os.path.relpath(Path(path).absolute(), Path(base).absolute())).as_posix()
    return rel if span is None else f"{rel}#{span[0]}-{span[1]}"


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/8"`` → ``(2, 8)`` (0-based shard index of ``n``)."""
    try:
        i, n = (int(v) for v in value.split("/"))
    except ValueError as err:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {value!r}") from err
    if not 0 <= i < n:
        raise ValueError(f"shard index must be in [0, {n}), got {value!r}")
    return i, n


@dataclass
class CacheReport:
    """What one :func:`build_cache` call did.

    Attributes:
        root: the cache folder.
        chunks_total: chunks in the whole cache.
        chunks_done_before: chunks of this shard that an earlier run had already finished.
        chunks_written: chunks this call wrote.
        videos_written: videos in the chunks this call wrote.
        failures: ``{key: cause}`` for videos of this call's chunks that failed to decode.
        complete: every chunk of every shard is finished (``index.json`` exists).
    """

    root: Path
    chunks_total: int
    chunks_done_before: int = 0
    chunks_written: int = 0
    videos_written: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    complete: bool = False

    def summary(self) -> str:
        """One line for humans."""
        state = "complete" if self.complete else "incomplete (other shards pending)"
        return (
            f"{self.root}: wrote {self.chunks_written} chunks ({self.videos_written} videos), "
            f"{self.chunks_done_before} already done, {len(self.failures)} failed; cache {state}"
        )


# --------------------------------------------------------------------------------- writing
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()


def _chunk_name(k: int) -> str:
    return f"{k:05d}"


@dataclass(frozen=True)
class _ChunkJob:
    index: int
    entries: list[tuple[str, str, tuple[int, int] | None]]  # (key, path, span)
    view_shapes: dict[str, tuple[int, int, int]]
    out: str


_VIEW_FN: ViewFn | None = None


def _init_worker(view_fn: ViewFn | None) -> None:
    global _VIEW_FN
    if view_fn is not None:
        _VIEW_FN = view_fn


def _run_chunk(job: _ChunkJob) -> tuple[int, int, dict[str, str]]:
    """Decode and degrade one chunk's videos; write its files. Returns (index, videos, failures)."""
    assert _VIEW_FN is not None
    out = Path(job.out)
    arrays: dict[str, list[np.ndarray]] = {name: [] for name in job.view_shapes}
    videos: list[dict[str, Any]] = []
    failures: dict[str, str] = {}
    offset = 0
    for key, path, span in job.entries:
        try:
            if span is None:
                frames, meta = read_video(path)
            else:
                frames, meta = read_video(path, start=span[0], end=span[1])
            if len(frames) == 0:
                raise VideoDecodeError(f"{path}: no frames in range {span}")
            views = _VIEW_FN(frames)
        except (VideoDecodeError, OSError, ValueError) as err:
            failures[key] = str(err)
            videos.append({"key": key, "error": str(err)})
            continue
        count = len(frames)
        for name, (h, w, c) in job.view_shapes.items():
            v = views[name]
            if v.shape != (count, h, w, c) or v.dtype != np.uint8:
                raise ValueError(
                    f"view {name!r} of {path} has shape {v.shape} {v.dtype}, "
                    f"expected ({count}, {h}, {w}, {c}) uint8"
                )
            arrays[name].append(v)
        videos.append(
            {
                "key": key,
                "offset": offset,
                "frames": count,
                "fps": round(float(meta.fps), 6),
                "source_size": [int(frames.shape[1]), int(frames.shape[2])],
            }
        )
        offset += count
    stem = _chunk_name(job.index)
    for name, (h, w, c) in job.view_shapes.items():
        data = np.concatenate(arrays[name]) if arrays[name] else np.zeros((0, h, w, c), np.uint8)
        _atomic_write_bytes(out / "chunks" / f"{stem}.{name}.npy", _npy_bytes(data))
    _atomic_write_bytes(out / "chunks" / f"{stem}.json", _json_bytes({"videos": videos}))
    return job.index, len(job.entries), failures


def _spec_digest(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def build_cache(
    entries: Sequence[tuple[str, tuple[int, int] | None]],
    view_fn: ViewFn,
    view_specs: Mapping[str, Mapping[str, Any]],
    view_shapes: Mapping[str, tuple[int, int, int]],
    out: str | Path,
    *,
    base: str | Path | None = None,
    chunk_size: int = 32,
    workers: int = 0,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
) -> CacheReport:
    """Decode every video once and store its views (resumable, shardable, parallel).

    Args:
        entries: ``(path, span)`` per video; ``span`` is a ``(start, end)`` frame range or
            ``None`` for the whole file. Duplicates are stored once.
        view_fn: source frames ``uint8 (T, H, W, 3)`` → ``{view: uint8 (T, h, w, 3)}``; must be
            deterministic and picklable (it runs in worker processes).
        view_specs: JSON-able description of the views (recorded in ``cache.json``; a rerun with
            a different description is refused).
        view_shapes: ``{name: (h, w, c)}`` of ``view_fn``'s outputs.
        out: cache folder.
        base: folder the keys are relative to (default: the entries' common parent).
        chunk_size: videos per chunk file.
        workers: worker processes (0: decode in this process).
        shard: ``(i, n)``: only chunks ``k`` with ``k % n == i``.
        progress: show a rich progress bar.

    Returns:
        A :class:`CacheReport`.

    Raises:
        ValueError: ``out`` holds a cache of other videos or views.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    i_shard, n_shard = shard
    out = Path(out)
    paths = [str(Path(p).absolute()) for p, _ in entries]
    if not paths:
        raise ValueError("no videos to preprocess")
    if base is None:
        base = os.path.commonpath([str(Path(p).parent) for p in paths])
    keyed: dict[str, tuple[str, tuple[int, int] | None]] = {}
    for p, (_, span) in zip(paths, entries, strict=True):
        span = None if span is None else (int(span[0]), int(span[1]))
        keyed.setdefault(cache_key(p, span, base), (p, span))
    keys = sorted(keyed)
    spec = {
        "format": CACHE_FORMAT,
        "views": {k: dict(v) for k, v in view_specs.items()},
        "view_shapes": {k: list(v) for k, v in view_shapes.items()},
        "chunk_size": chunk_size,
        "base": str(Path(base).absolute()),
        "keys": keys,
    }
    (out / "chunks").mkdir(parents=True, exist_ok=True)
    manifest = out / "cache.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text())
        if _spec_digest(old) != _spec_digest(spec):
            diff = [k for k in spec if old.get(k) != spec[k]]
            raise ValueError(
                f"{out} already holds a cache of other videos or views (differs in "
                f"{', '.join(diff)}); use another --out folder or delete this one"
            )
    else:
        _atomic_write_bytes(manifest, _json_bytes(spec))

    num_chunks = (len(keys) + chunk_size - 1) // chunk_size
    mine = [k for k in range(num_chunks) if k % n_shard == i_shard]
    report = CacheReport(root=out, chunks_total=num_chunks)
    for stale in (out / "chunks").glob(".*.tmp"):  # left by a killed run of this shard
        try:
            if int(stale.name[1:6]) % n_shard == i_shard:
                stale.unlink()
        except ValueError:
            continue
    todo: list[_ChunkJob] = []
    for k in mine:
        if (out / "chunks" / f"{_chunk_name(k)}.json").is_file():
            report.chunks_done_before += 1
            continue
        chunk_keys = keys[k * chunk_size : (k + 1) * chunk_size]
        todo.append(
            _ChunkJob(
                index=k,
                entries=[(key, *keyed[key]) for key in chunk_keys],
                view_shapes=dict(view_shapes),
                out=str(out),
            )
        )
    total_videos = sum(len(j.entries) for j in todo)
    with _progress(progress, total_videos, f"preprocess {out.name}") as advance:
        for _, count, failures in _map_chunks(todo, view_fn, workers):
            report.chunks_written += 1
            report.videos_written += count
            report.failures.update(failures)
            advance(count)
    for key, cause in sorted(report.failures.items()):
        log.warning("preprocess: %s failed: %s", key, cause)
    report.complete = _finalize(out, num_chunks)
    return report


def _map_chunks(
    jobs: list[_ChunkJob], view_fn: ViewFn, workers: int
) -> Iterator[tuple[int, int, dict[str, str]]]:
    if not jobs:
        return
    if workers <= 0:
        _init_worker(view_fn)
        for job in jobs:
            yield _run_chunk(job)
        return
    # forked workers inherit OpenCV single-threaded (see lowres_har._mp)
    with process_pool(min(workers, len(jobs)), _init_worker, (view_fn,)) as pool:
        futures = [pool.submit(_run_chunk, job) for job in jobs]
        for fut in as_completed(futures):
            yield fut.result()


class _progress:
    """A rich progress bar over videos (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int, title: str) -> None:
        self.enabled = enabled and total > 0
        self.total = total
        self.title = title
        self._bar: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._bar.start()
        task = self._bar.add_task(self.title, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _finalize(out: Path, num_chunks: int) -> bool:
    """Write ``index.json`` and ``report.json`` once every chunk exists; True when complete."""
    chunk_files = [out / "chunks" / f"{_chunk_name(k)}.json" for k in range(num_chunks)]
    if not all(f.is_file() for f in chunk_files):
        return False
    if (out / "index.json").is_file() and (out / "report.json").is_file():
        return True
    index: dict[str, list[Any]] = {}
    failed: dict[str, str] = {}
    for k, f in enumerate(chunk_files):
        for video in json.loads(f.read_text())["videos"]:
            if "error" in video:
                failed[video["key"]] = video["error"]
            else:
                index[video["key"]] = [k, video["offset"], video["frames"], video["fps"]]
    _atomic_write_bytes(out / "report.json", _json_bytes({"failed": failed}))
    _atomic_write_bytes(out / "index.json", _json_bytes({"videos": index}))
    return True


# --------------------------------------------------------------------------------- reading
class VideoCache:
    """Read access to a finished cache folder.

    Args:
        root: the folder :func:`build_cache` wrote.

    Raises:
        FileNotFoundError: ``root`` holds no cache, or the cache is incomplete (the message says
            how many chunks are missing).
        ValueError: the cache has another format version.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        manifest = self.root / "cache.json"
        if not manifest.is_file():
            raise FileNotFoundError(
                f"{manifest} not found: build the cache with `lowres-har preprocess --config ... "
                f"--out {self.root}`"
            )
        spec = json.loads(manifest.read_text())
        if spec.get("format") != CACHE_FORMAT:
            raise ValueError(
                f"{manifest}: cache format {spec.get('format')} but this lowres-har reads "
                f"format {CACHE_FORMAT}; rebuild it with `lowres-har preprocess`"
            )
        index_file = self.root / "index.json"
        if not index_file.is_file():
            num_chunks = (len(spec["keys"]) + spec["chunk_size"] - 1) // spec["chunk_size"]
            done = sum(
                (self.root / "chunks" / f"{_chunk_name(k)}.json").is_file()
                for k in range(num_chunks)
            )
            raise FileNotFoundError(
                f"{self.root}: cache incomplete ({done} of {num_chunks} chunks); rerun "
                f"`lowres-har preprocess` (every shard) to finish it"
            )
        self.spec: dict[str, Any] = spec
        self.base = Path(spec["base"])
        self.view_shapes = {k: tuple(v) for k, v in spec["view_shapes"].items()}
        self.index: dict[str, list[Any]] = json.loads(index_file.read_text())["videos"]
        self.failed: dict[str, str] = json.loads((self.root / "report.json").read_text())["failed"]
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """The view descriptions the cache was built with."""
        return dict(self.spec["views"])

    def key(self, path: str | Path, span: tuple[int, int] | None = None) -> str:
        """The key of a video (see :func:`cache_key`)."""
        return cache_key(path, span, self.base)

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def num_frames(self, key: str) -> int:
        """Frames stored for ``key``."""
        return int(self._entry(key)[2])

    def fps(self, key: str) -> float:
        """Frame rate of the source video."""
        return float(self._entry(key)[3])

    def _entry(self, key: str) -> list[Any]:
        try:
            return self.index[key]
        except KeyError:
            if key in self.failed:
                raise VideoDecodeError(
                    f"{key}: failed in preprocessing ({self.failed[key]})"
                ) from None
            raise KeyError(
                f"{key!r} is not in the cache {self.root}; was it built for this dataset?"
            ) from None

    def _array(self, chunk: int, view: str) -> np.ndarray:
        arr = self._arrays.get((chunk, view))
        if arr is None:
            path = self.root / "chunks" / f"{_chunk_name(chunk)}.{view}.npy"
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            self._arrays[(chunk, view)] = arr
        return arr

    def frames(
        self, key: str, views: Sequence[str] | None = None, indices: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Stored frames of one video.

        Args:
            key: the video's key.
            views: view names (default all).
            indices: frame indices to take (default all frames).

        Returns:
            ``{view: uint8 (T, h, w, 3)}`` (copies, safe to modify).
        """
        chunk, offset, count, _ = self._entry(key)
        out = {}
        for view in views or list(self.view_shapes):
            if view not in self.view_shapes:
                raise KeyError(
                    f"view {view!r} is not in the cache {self.root} "
                    f"(it holds {sorted(self.view_shapes)})"
                )
            block = self._array(chunk, view)[offset : offset + count]
            out[view] = np.array(block if indices is None else block[indices])
        return out

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each worker
        state = dict(self.__dict__)
        state["_arrays"] = {}
        return state
