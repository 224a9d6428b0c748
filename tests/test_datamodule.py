"""VideoDataModule features shared by every dataset: predict windows, short-video policies,
on_error for undecodable files."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lowres_har.data import SynthActionsDataModule
from lowres_har.data.cache import build_cache
from lowres_har.data.datasets.base import ClipDataset, check_videos
from lowres_har.data.io import VideoDecodeError, write_video
from lowres_har.data.sampling import sliding_windows
from lowres_har.data.views import ClipTransform, ViewDegrader, parse_views

TINY = dict(videos_per_class=3, video_frames=8, video_size=32, workers=0, num_workers=0)


@pytest.mark.usefixtures("tiny_synth")
def test_predict_windows_cover_every_video(data_home: Path, tmp_path: Path) -> None:
    kw = dict(root=str(data_home / "synth_actions"), num_frames=3, stride=1, **TINY)
    dm = SynthActionsDataModule(predict_windows=True, window_step=2, **kw)
    loader = dm.predict_dataloader()
    ds = dm.window_dataset
    assert ds is not None
    per_video = len(sliding_windows(8, 3, 1, 2))  # starts 0, 2, 4 and the end-aligned 5
    assert per_video == 4 and len(ds) == 12 * per_video  # 12 test videos
    batch = next(iter(loader))
    assert batch["video"].shape[1:] == (3, 3, 32, 32)
    assert batch["window_start"][:4].tolist() == [0, 2, 4, 5]
    assert batch["window_end"][:4].tolist() == [3, 5, 7, 8]
    assert torch.all(batch["fps"] == 16)
    # the same windows from a preprocessing cache
    deg = ViewDegrader(dm.views)
    entries = [(str(e[0]), None) for e in dm.all_videos()]
    build_cache(entries, deg, deg.specs(), deg.shapes, tmp_path / "c", progress=False)
    cached = SynthActionsDataModule(
        predict_windows=True, window_step=2, cache_dir=str(tmp_path / "c"), **kw
    )
    cached.setup("predict")
    assert cached.window_dataset is not None and len(cached.window_dataset) == len(ds)
    for i in (0, 5, len(ds) - 1):
        torch.testing.assert_close(cached.window_dataset[i]["video"], ds[i]["video"])


def test_short_policies(tmp_path: Path) -> None:
    clip = np.full((3, 16, 16, 3), 200, np.uint8)
    path = write_video(tmp_path / "short.avi", clip, fps=5, codec="mjpeg")
    views = parse_views({"video": {"size": [4, 4]}})
    tf = ClipTransform(views, train=False, mean=(0, 0, 0), std=(1, 1, 1))
    pad = ClipDataset([(str(path), 0)], tf, num_frames=5, short="pad")[0]["video"]
    assert pad.shape == (3, 5, 4, 4)
    assert float(pad[:, :3].mean()) > 0.7 and float(pad[:, 3:].abs().max()) == 0.0
    loop = ClipDataset([(str(path), 0)], tf, num_frames=5, short="loop")[0]["video"]
    assert float(loop.min()) > 0.7
    with pytest.raises(ValueError, match="short must be one of"):
        ClipDataset([(str(path), 0)], tf, short="wrap")


def test_undecodable_video_raise_or_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = write_video(tmp_path / "good.avi", np.full((4, 16, 16, 3), 90, np.uint8), codec="mjpeg")
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"\x00junk" * 40)
    tf = ClipTransform(parse_views({"video": {"size": [4, 4]}}), train=False)
    entries = [(str(bad), 1), (str(good), 0)]
    with pytest.raises(VideoDecodeError, match="bad.avi"):
        ClipDataset(entries, tf, num_frames=2)[0]
    ds = ClipDataset(entries, tf, num_frames=2, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        item = ds[0]
    assert int(item["label"]) == 0 and int(item["video_index"]) == 1
    assert "bad.avi" in caplog.text and "1 failed" in caplog.text


def test_check_videos_counts_missing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    entries = [(str(tmp_path / n), 0) for n in ("a.mp4", "b.mp4", "c.mp4")]
    with pytest.raises(FileNotFoundError, match=r"demo: 2 of 3 videos are missing .*b\.mp4"):
        check_videos(entries, what="demo")
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        kept = check_videos(entries, on_error="skip", what="demo")
    assert kept == entries[:1] and "2 of 3" in caplog.text


@pytest.mark.usefixtures("tiny_synth")
def test_missing_synth_video_skip(data_home: Path, tmp_path: Path) -> None:
    dm = SynthActionsDataModule(root=str(data_home / "synth_actions"), **TINY)
    copy = tmp_path / "copy"
    shutil.copytree(dm.dataset_dir, copy)
    dm.dataset_dir = copy
    Path(dm.split_videos("test")[0][0]).unlink()
    with pytest.raises(FileNotFoundError, match="1 of 12 videos are missing"):
        dm.split_videos("test")
    dm.on_error = "skip"
    assert len(dm.split_videos("test")) == 11
