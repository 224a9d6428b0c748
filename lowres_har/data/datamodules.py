"""LightningDataModules. ``VideoDataModule`` holds what every dataset shares; subclasses only
say where the videos and labels are."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from lowres_har.data.cache import CacheReport, VideoCache
from lowres_har.data.datasets.base import (
    ON_ERROR,
    ClipDataset,
    SlidingWindowDataset,
    VideoEntry,
    check_videos,
)
from lowres_har.data.io import VideoDecodeError
from lowres_har.data.views import ClipTransform, ViewDegrader, parse_streams, parse_views
from lowres_har.transforms import KINETICS_MEAN, KINETICS_STD

__all__ = ["SynthActionsDataModule", "VideoDataModule", "default_data_home", "synth_key"]

log = logging.getLogger("lowres_har")


def default_data_home() -> Path:
    """Where datasets lowres-har makes itself are cached: ``$LOWRES_HAR_HOME`` or
    ``~/.cache/lowres_har``."""
    return Path(os.environ.get("LOWRES_HAR_HOME", Path.home() / ".cache" / "lowres_har"))


def synth_key(version: int, seed: int, videos: int, frames: int, size: int, fps: int) -> str:
    """Folder name of one SynthActions configuration under the cache root."""
    return f"v{version}_seed{seed}_{videos}x{frames}f_{size}px_{fps}fps"


class VideoDataModule(L.LightningDataModule):
    """Shared loaders, sampling and resolution views for every video dataset.

    Subclasses implement :meth:`split_videos` and set ``self.class_names``.

    Args:
        batch_size: clips per batch (per device).
        num_workers: DataLoader worker processes.
        num_frames: frames per clip ``T``.
        stride: frame step within a clip.
        sampling: ``"clip"`` or ``"segment"`` (TSN-style, one frame per segment).
        eval_clips: clips per video at val/test/predict time (merged by ``video_index``).
        views: ``{name: {size: [H, W], upsample_to: [H, W]}}``; default eLR 12×16 → 32×32 as
            ``video``.
        hflip: horizontal flip probability in training.
        crop_scale: area range of the training random crop; ``null`` disables it.
        crop_ratio: aspect range of that crop relative to the frame's (``[1, 1]``: same shape).
        mean: normalisation mean per channel.
        std: normalisation std per channel.
        pin_memory: pin host memory for faster GPU transfer.
        persistent_workers: keep workers alive between epochs.
        on_error: what to do with split entries whose video is missing or fails to decode:
            ``"raise"`` (an error naming how many and the first ones) or ``"skip"`` (a logged,
            counted skip).
        short: policy for videos shorter than a clip: ``"loop"``, ``"repeat_last"`` or ``"pad"``.
        cache_dir: a folder written by ``lowres-har preprocess`` for this data configuration;
            clips are then read from it instead of decoding the videos (same views required).
        short_side_scale: ``[min, max]`` random short side (pixels) of the source frames in
            training (``min`` in evaluation) before cropping; ``null`` keeps the size.
        crop_size: ``[H, W]`` fixed-size crop of the source frames (random in training, centre in
            evaluation), used instead of the ``crop_scale`` crop.
        randaugment: RandAugment arguments for training, e.g. ``{num_ops: 2, magnitude: 9}``;
            ``null`` disables it.
        predict_split: the split ``predict`` runs on.
        predict_windows: predict over sliding windows covering each whole video (items carry
            ``window_start``/``window_end`` frame numbers and ``fps``) instead of
            ``eval_clips`` clips per video.
        window_step: frames between window starts (default: the clip span, no overlap).
        auto_cache: build the preprocessing cache in ``prepare_data`` when it is missing (at
            ``cache_dir``, or when that is ``null`` under ``$LOWRES_HAR_HOME/cache/`` in a folder
            named after a digest of the views, streams and video list), then read from it.
        cache_workers: processes for ``auto_cache`` (default: all cores).
        streams: derived inputs computed from a view, e.g. MSN's ``{flow: {view: video, method:
            tvl1}, mask: {view: video}}`` (see :func:`~lowres_har.data.views.parse_streams`);
            batches then carry ``flow`` ``(B, 2, T, H, W)`` and ``mask`` ``(B, 1, T, H, W)``.
    """

    def __init__(
        self,
        batch_size: int = 16,
        num_workers: int = 2,
        num_frames: int = 16,
        stride: int = 2,
        sampling: str = "clip",
        eval_clips: int = 1,
        views: dict[str, dict[str, Any]] | None = None,
        hflip: float = 0.5,
        crop_scale: tuple[float, float] | None = (0.6, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        on_error: str = "raise",
        short: str = "loop",
        cache_dir: str | None = None,
        short_side_scale: tuple[int, int] | None = None,
        crop_size: tuple[int, int] | None = None,
        randaugment: dict[str, Any] | None = None,
        predict_split: str = "test",
        predict_windows: bool = False,
        window_step: int | None = None,
        streams: dict[str, dict[str, Any]] | None = None,
        auto_cache: bool = False,
        cache_workers: int | None = None,
    ) -> None:
        super().__init__()
        self.auto_cache = auto_cache
        self.cache_workers = cache_workers
        self.predict_split = predict_split
        self.predict_windows = predict_windows
        self.window_step = window_step
        self.short_side_scale = short_side_scale
        self.crop_size = crop_size
        self.randaugment = randaugment
        self.short = short
        self.cache_dir = cache_dir
        self._cache: VideoCache | None = None
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.on_error = on_error
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.num_frames = num_frames
        self.stride = stride
        self.sampling = sampling
        self.eval_clips = eval_clips
        self.views = parse_views(views)
        self.streams = parse_streams(streams, self.views)
        self.hflip = hflip
        self.crop_scale = tuple(crop_scale) if crop_scale else None
        self.crop_ratio = (float(crop_ratio[0]), float(crop_ratio[1]))
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.class_names: list[str] = []
        self.datasets: dict[str, ClipDataset] = {}
        self.window_dataset: SlidingWindowDataset | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes (known before ``setup``)."""
        return len(self.class_names)

    def split_videos(self, split: str) -> list[VideoEntry]:
        """Entries ``(path, label)`` (or ``(path, label, (start, end))``) of every video in
        ``split`` (``train``/``val``/``test``).

        Implementations pass their list through
        :func:`~lowres_har.data.datasets.base.check_videos` with ``self.on_error``.
        """
        raise NotImplementedError

    def degrader(self) -> ViewDegrader:
        """The deterministic part of this module's views and streams (what a cache stores)."""
        return ViewDegrader(self.views, self.streams)

    def inference_config(self) -> dict[str, Any]:
        """The evaluation pipeline as a JSON-able dict, stored in task checkpoints under
        ``checkpoint["lowres_har"]["pipeline"]`` so ``lowres-har predict`` rebuilds it.

        Keys: ``version`` (1); ``views`` and ``streams`` (every view and stream, in the spelling
        :func:`~lowres_har.data.views.parse_views` / :func:`~lowres_har.data.views.parse_streams`
        read back; predict keeps those the model's ``input_keys`` need); ``num_frames``,
        ``stride`` (frames), ``sampling``, ``short``, ``eval_clips``, ``window_step`` (frames
        or ``None``); ``mean``, ``std`` (per channel, [0, 1] units); the evaluation crop
        ``short_side_scale`` (pixels, ``[min, max]``, evaluation uses ``min``) and ``crop_size``
        (``[H, W]``) or ``None``; ``class_names``; ``fps`` (``None``: windows count decoded
        frames at the video's own rate; no resampling happens in the data modules);
        ``data_fps`` (the training videos' frame rate when the module knows it, else ``None``);
        ``datamodule`` (class name).
        """
        views: dict[str, dict[str, Any]] = {}
        for name, v in self.views.items():
            views[name] = {
                "size": list(v.size),
                "upsample_to": None if v.upsample_to is None else list(v.upsample_to),
                "interpolation": v.interpolation,
                "upsample_interpolation": v.upsample_interpolation,
                "aspect": v.aspect,
                "blur_sigma": v.blur_sigma,
                "jpeg_quality": v.jpeg_quality,
                "noise": list(v.noise) if isinstance(v.noise, tuple) else v.noise,
            }
        streams = {
            name: {"kind": s.kind, "view": s.view, **dict(s.params)}
            for name, s in self.streams.items()
        }
        data_fps = getattr(self, "video_fps", None)
        return {
            "version": 1,
            "views": views,
            "streams": streams,
            "num_frames": int(self.num_frames),
            "stride": int(self.stride),
            "sampling": self.sampling,
            "short": self.short,
            "eval_clips": int(self.eval_clips),
            "window_step": None if self.window_step is None else int(self.window_step),
            "mean": [float(m) for m in self.mean],
            "std": [float(s) for s in self.std],
            "short_side_scale": (
                None if self.short_side_scale is None else [int(s) for s in self.short_side_scale]
            ),
            "crop_size": None if self.crop_size is None else [int(s) for s in self.crop_size],
            "class_names": list(self.class_names),
            "fps": None,
            "data_fps": float(data_fps) if isinstance(data_fps, (int, float)) else None,
            "datamodule": type(self).__name__,
        }

    def all_videos(self) -> list[VideoEntry]:
        """Entries of every split, each video once (what ``lowres-har preprocess`` decodes)."""
        seen: dict[tuple[str, Any], VideoEntry] = {}
        for split in ("train", "val", "test"):
            for entry in self.split_videos(split):
                key = (str(entry[0]), tuple(entry[2]) if len(entry) > 2 else None)  # type: ignore[misc]
                seen.setdefault(key, entry)
        return list(seen.values())

    def default_cache_dir(self) -> Path:
        """Where ``auto_cache`` puts the cache when ``cache_dir`` is not set: a folder named after
        a digest of the views, streams and video list (the same on every rank and run)."""
        import hashlib
        import json

        keys = sorted(
            f"{e[0]}#{tuple(e[2]) if len(e) > 2 else ''}"  # type: ignore[misc]
            for e in self.all_videos()
        )
        blob = json.dumps({"views": self.degrader().specs(), "videos": keys}, sort_keys=True)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return default_data_home() / "cache" / f"{type(self).__name__}_{digest}"

    def _resolve_cache_dir(self) -> None:
        if self.auto_cache and self.cache_dir is None:
            self.cache_dir = str(self.default_cache_dir())

    def preprocess(
        self,
        out: str | Path,
        *,
        workers: int | None = None,
        shard: tuple[int, int] = (0, 1),
        chunk_size: int = 32,
        progress: bool = True,
    ) -> CacheReport:
        """Decode every video of every split once into the cache folder ``out`` (see
        :func:`~lowres_har.data.cache.build_cache`: resumable, shardable); what
        ``lowres-har preprocess`` runs."""
        from lowres_har.data.cache import build_cache

        deg = self.degrader()
        entries = [(str(e[0]), tuple(e[2]) if len(e) > 2 else None) for e in self.all_videos()]  # type: ignore[misc]
        return build_cache(
            entries,  # type: ignore[arg-type]
            deg,
            deg.specs(),
            deg.shapes,
            out,
            chunk_size=chunk_size,
            workers=(os.cpu_count() or 1) if workers is None else workers,
            shard=shard,
            progress=progress,
        )

    def build_cache(self, *, workers: int | None = None, progress: bool = True) -> Path:
        """Build ``cache_dir`` (or the ``auto_cache`` folder) unless it is finished already."""
        self._resolve_cache_dir()
        if self.cache_dir is None:
            raise ValueError("build_cache needs cache_dir (or auto_cache: true)")
        out = Path(self.cache_dir)
        if not (out / "index.json").is_file():
            log.info("building the preprocessing cache in %s", out)
            log.info("%s", self.preprocess(out, workers=workers, progress=progress).summary())
        return out

    def prepare_data(self) -> None:
        """Build the preprocessing cache when ``auto_cache`` is set."""
        if self.auto_cache:
            self.build_cache(workers=self.cache_workers)

    @property
    def cache(self) -> VideoCache | None:
        """The opened preprocessing cache (``cache_dir``), checked against ``views``."""
        self._resolve_cache_dir()
        if self.cache_dir is None:
            return None
        if self._cache is None:
            if self.crop_size is not None or self.short_side_scale is not None:
                raise ValueError(
                    "crop_size and short_side_scale act on the source frames, which a cache "
                    f"({self.cache_dir}) no longer has; use crop_scale (a relative crop of the "
                    "cached views) or drop cache_dir"
                )
            cache = VideoCache(self.cache_dir)
            if self.randaugment and self.streams:
                raise ValueError(
                    "randaugment cannot act on cached flow/mask streams (its geometric ops would "
                    "misalign them): drop cache_dir or randaugment"
                )
            wanted = self.degrader().specs()
            for name, spec in wanted.items():
                if cache.views.get(name) != spec:
                    raise ValueError(
                        f"cache {self.cache_dir} was built with view {name!r} = "
                        f"{cache.views.get(name)}, but this data module asks for {spec}; "
                        f"rebuild it with `lowres-har preprocess` for this config"
                    )
            self._cache = cache
        return self._cache

    def _cached_entries(self, entries: list[VideoEntry], split: str) -> list[VideoEntry]:
        """Drop (``on_error: skip``) or report entries that failed in preprocessing."""
        cache = self.cache
        assert cache is not None
        failed, absent = [], []
        kept: list[VideoEntry] = []
        for entry in entries:
            key = cache.key(entry[0], tuple(entry[2]) if len(entry) > 2 else None)  # type: ignore[misc,arg-type]
            if key in cache.failed:
                failed.append(f"{key} ({cache.failed[key]})")
            elif key not in cache:
                absent.append(key)
            else:
                kept.append(entry)
        if absent:
            raise ValueError(
                f"{len(absent)} {split} videos are not in the cache {self.cache_dir} "
                f"(first: {', '.join(absent[:3])}); rebuild it with `lowres-har preprocess`"
            )
        if failed:
            msg = f"{len(failed)} {split} videos failed in preprocessing: {'; '.join(failed[:3])}"
            if self.on_error == "raise":
                raise VideoDecodeError(msg + " (set on_error: skip to train without them)")
            log.warning("%s; skipped (on_error: skip)", msg)
        return kept

    def _split_entries(self, split: str) -> list[VideoEntry]:
        entries = self.split_videos(split)
        return entries if self.cache is None else self._cached_entries(entries, split)

    def make_transform(self, *, train: bool) -> ClipTransform:
        """The clip pipeline of this module's views, streams and augmentation."""
        return ClipTransform(
            self.views,
            train=train,
            hflip=self.hflip,
            crop_scale=self.crop_scale,  # type: ignore[arg-type]
            crop_ratio=self.crop_ratio,
            mean=self.mean,
            std=self.std,
            short_side_scale=self.short_side_scale,
            crop_size=self.crop_size,
            randaugment=self.randaugment,
            streams=self.streams,
        )

    def make_dataset(self, split: str) -> ClipDataset:
        """The :class:`ClipDataset` of a split, with training augmentation for ``train``."""
        train = split == "train"
        entries = self._split_entries(split)
        transform = self.make_transform(train=train)
        return ClipDataset(
            entries,
            transform,
            num_frames=self.num_frames,
            stride=self.stride,
            sampling=self.sampling,
            train=train,
            clips_per_video=self.eval_clips,
            short=self.short,
            cache=self.cache,
            on_error=self.on_error,
        )

    def setup(self, stage: str | None = None) -> None:
        if stage == "predict" and self.predict_windows:
            if self.window_dataset is None:
                self.window_dataset = self.make_window_dataset(self.predict_split)
            return
        wanted = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": (self.predict_split,),
            None: ("train", "val", "test"),
        }[stage]
        for split in wanted:
            if split not in self.datasets:
                self.datasets[split] = self.make_dataset(split)

    @property
    def train_dataset(self) -> ClipDataset:
        return self.datasets["train"]

    @property
    def val_dataset(self) -> ClipDataset:
        return self.datasets["val"]

    @property
    def test_dataset(self) -> ClipDataset:
        return self.datasets["test"]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        return self._dataloader(self.datasets[split], shuffle)

    def _dataloader(self, dataset: Any, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=shuffle and len(dataset) > self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        if not self.predict_windows:
            return self._loader(self.predict_split, shuffle=False)
        if self.window_dataset is None:
            self.setup("predict")
        assert self.window_dataset is not None
        return self._dataloader(self.window_dataset, shuffle=False)

    def make_window_dataset(self, split: str) -> SlidingWindowDataset:
        """Sliding windows over every video of ``split`` (see :class:`SlidingWindowDataset`)."""
        entries = self._split_entries(split)
        transform = self.make_transform(train=False)
        return SlidingWindowDataset(
            entries,
            transform,
            num_frames=self.num_frames,
            stride=self.stride,
            step=self.window_step,
            short=self.short,
            cache=self.cache,
        )


class SynthActionsDataModule(VideoDataModule):
    """SynthActions: the built-in synthetic low-resolution action dataset (offline, seeded).

    The videos are rendered once by :func:`lowres_har.data.synth.generate_synth_actions` into
    ``root/<key>`` (``key`` encodes version and parameters, so other settings never collide) and
    reused afterwards.

    Args:
        root: cache folder (default ``$LOWRES_HAR_HOME/synth_actions``).
        videos_per_class: videos rendered per class (split 60/20/20 into train/val/test).
        video_frames: frames per rendered video.
        video_size: rendered frame size (square, pixels).
        video_fps: frame rate written to the files.
        seed: rendering seed; the same seed gives identical files.
        classes: optional subset of class names (relabelled 0..n-1 in the order given).
        workers: processes used to render (``None``: all cores).
        **kwargs: :class:`VideoDataModule` arguments.
    """

    def __init__(
        self,
        root: str | None = None,
        videos_per_class: int = 60,
        video_frames: int = 32,
        video_size: int = 112,
        video_fps: int = 16,
        seed: int = 0,
        classes: list[str] | None = None,
        workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from lowres_har.data.synth import SYNTH_CLASSES, SYNTH_VERSION

        self.root = Path(root).expanduser() if root else default_data_home() / "synth_actions"
        self.videos_per_class = videos_per_class
        self.video_frames = video_frames
        self.video_size = video_size
        self.video_fps = video_fps
        self.seed = seed
        self.workers = workers
        if classes is not None:
            unknown = [c for c in classes if c not in SYNTH_CLASSES]
            if unknown or len(set(classes)) != len(classes) or not classes:
                raise ValueError(
                    f"classes must be distinct names from {list(SYNTH_CLASSES)}; got {classes}"
                )
        self.class_names = list(classes) if classes is not None else list(SYNTH_CLASSES)
        self.dataset_dir = self.root / synth_key(
            SYNTH_VERSION, seed, videos_per_class, video_frames, video_size, video_fps
        )

    def prepare_data(self) -> None:
        """Render the videos if this configuration is not cached yet."""
        from lowres_har.data.synth import generate_synth_actions

        generate_synth_actions(
            self.dataset_dir,
            videos_per_class=self.videos_per_class,
            num_frames=self.video_frames,
            size=self.video_size,
            fps=self.video_fps,
            seed=self.seed,
            workers=self.workers,
        )
        super().prepare_data()

    def split_videos(self, split: str) -> list[VideoEntry]:
        listing = self.dataset_dir / f"{split}.txt"
        if not listing.is_file():
            raise FileNotFoundError(
                f"{listing} not found: call prepare_data() (or `lowres-har synth`) first"
            )
        from lowres_har.data.synth import SYNTH_CLASSES

        relabel = {SYNTH_CLASSES.index(c): i for i, c in enumerate(self.class_names)}
        videos: list[VideoEntry] = []
        for n, line in enumerate(listing.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rel, label = line.rsplit(maxsplit=1)
                original = int(label)
            except ValueError as err:
                raise ValueError(f"{listing}:{n}: expected '<path> <label>', got {line!r}") from err
            if original in relabel:
                videos.append((str(self.dataset_dir / rel), relabel[original]))
        return check_videos(videos, on_error=self.on_error, what=f"SynthActions {split}")
