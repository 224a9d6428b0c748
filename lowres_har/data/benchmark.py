"""Data-loading benchmark: clips/s from the preprocessing cache vs decoding every sample.

Both paths run in the same process, on the same SynthActions files, with the same view, clip
length and training augmentation, so the ratio is what the cache buys on this machine.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lowres_har.data.datamodules import SynthActionsDataModule
from lowres_har.data.datasets.base import ClipDataset

__all__ = ["DataBenchmark", "benchmark_data"]


@dataclass
class DataBenchmark:
    """Result of :func:`benchmark_data` (rates per second, single process).

    Attributes:
        videos: videos in the benchmark set.
        num_frames: frames per clip.
        view: the view description (size and upsampling).
        preprocess_videos_per_s: rate of building the cache (decode + degrade + write).
        decode_clips_per_s: clips/s when every sample decodes its video file.
        cache_clips_per_s: clips/s when samples are sliced from the cache.
        speedup: ``cache_clips_per_s / decode_clips_per_s``.
        decode_samples: samples timed on the decode path.
        cache_samples: samples timed on the cache path.
    """

    videos: int
    num_frames: int
    view: str
    preprocess_videos_per_s: float
    decode_clips_per_s: float
    cache_clips_per_s: float
    speedup: float
    decode_samples: int
    cache_samples: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)


def _rates(
    datasets: list[ClipDataset], samples: list[int], seed: int, rounds: int = 4
) -> list[float]:
    """Clips per second of each dataset over random items, with one torch thread (what a
    DataLoader worker runs with). The datasets take turns in ``rounds`` blocks so that they see
    the same machine load."""
    gen = torch.Generator().manual_seed(seed)
    orders = [
        torch.randint(0, len(d), (n,), generator=gen).tolist()
        for d, n in zip(datasets, samples, strict=True)
    ]
    elapsed = [0.0] * len(datasets)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for d, order in zip(datasets, orders, strict=True):
            for i in order[:5]:  # warm-up (opens files, maps the cache) and a sanity check
                if not torch.isfinite(d[i]["video"]).all():
                    raise RuntimeError("non-finite values in a benchmark clip")
        for r in range(rounds):
            for k, (d, order) in enumerate(zip(datasets, orders, strict=True)):
                block = order[r * len(order) // rounds : (r + 1) * len(order) // rounds]
                start = time.perf_counter()
                for i in block:
                    d[i]
                elapsed[k] += time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return [n / t for n, t in zip(samples, elapsed, strict=True)]


def benchmark_data(
    *,
    root: str | None = None,
    videos_per_class: int = 10,
    video_frames: int = 32,
    num_frames: int = 32,
    views: dict[str, dict[str, Any]] | None = None,
    decode_samples: int = 120,
    cache_samples: int = 2000,
    cache_dir: str | None = None,
    seed: int = 0,
) -> DataBenchmark:
    """Measure clips/s from the cache and from decoding, in one run.

    Args:
        root: SynthActions cache root (default ``$LOWRES_HAR_HOME/synth_actions``).
        videos_per_class: videos per class rendered for the benchmark (12 classes).
        video_frames: frames per rendered video (112×112, 16 fps).
        num_frames: frames per clip (stride 1).
        views: view config (default eLR 12×16 → 32×32).
        decode_samples: samples timed on the decode path.
        cache_samples: samples timed on the cache path.
        cache_dir: where to build the cache (default a temporary folder, removed afterwards).
        seed: sample order seed.
    """
    views = views or {"video": {"size": [12, 16], "upsample_to": [32, 32]}}
    dm = SynthActionsDataModule(
        root=root,
        videos_per_class=videos_per_class,
        video_frames=video_frames,
        views=views,
        num_frames=num_frames,
        stride=1,
        num_workers=0,
    )
    dm.prepare_data()
    entries = dm.all_videos()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(cache_dir) if cache_dir else Path(tmp) / "cache"
        start = time.perf_counter()
        dm.preprocess(out, workers=0, progress=False)
        pre_rate = len(entries) / (time.perf_counter() - start)
        decode_ds = dm.make_dataset("train")
        dm.cache_dir = str(out)
        cache_ds = dm.make_dataset("train")
        decode, cached = _rates([decode_ds, cache_ds], [decode_samples, cache_samples], seed)
    view = ", ".join(f"{k}: {v}" for k, v in views.items())
    return DataBenchmark(
        videos=len(entries),
        num_frames=num_frames,
        view=view,
        preprocess_videos_per_s=pre_rate,
        decode_clips_per_s=decode,
        cache_clips_per_s=cached,
        speedup=cached / decode,
        decode_samples=decode_samples,
        cache_samples=cache_samples,
    )
