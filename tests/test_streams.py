"""Derived streams (MSN's optical flow and slack mask) in the data pipeline and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lowres_har.data import SynthActionsDataModule
from lowres_har.data.cache import build_cache
from lowres_har.data.views import ClipTransform, ViewDegrader, parse_streams, parse_views

VIEWS = {"video": {"size": [12, 16], "upsample_to": [32, 32]}, "video_lr": {"size": [32, 32]}}
STREAMS = {
    "flow": {"view": "video", "method": "farneback"},
    "mask": {"view": "video"},
    "flow_lr": {"view": "video_lr", "method": "farneback"},
}
TINY = dict(videos_per_class=3, video_frames=8, video_size=32, workers=0, num_workers=0)


def _moving(frames: int = 8, step: int = 2, size: int = 64) -> np.ndarray:
    """A textured square moving right by ``step`` source pixels per frame."""
    rng = np.random.default_rng(0)
    tex = rng.integers(60, 255, (20, 20, 3), dtype=np.uint8)
    out = np.full((frames, size, size, 3), 30, np.uint8)
    for t in range(frames):
        x = 8 + step * t
        out[t, 22:42, x : x + 20] = tex
    return out


def test_parse_streams() -> None:
    views = parse_views(VIEWS)
    streams = parse_streams(STREAMS, views)
    assert {n: (s.kind, s.view, s.channels) for n, s in streams.items()} == {
        "flow": ("flow", "video", 2),
        "mask": ("mask", "video", 1),
        "flow_lr": ("flow", "video_lr", 2),
    }
    for bad, match in (
        ({"speed": {"view": "video"}}, "kind must be one of"),
        ({"flow": {"view": "thermal"}}, "unknown view"),
        ({"flow": {"method": "lucas"}}, "stream 'flow'"),
        ({"mask": {"sigmaa": 1.0}}, "stream 'mask'"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_streams(bad, views)


def test_flow_direction_follows_motion_and_flip() -> None:
    views = parse_views({"video": {"size": [32, 32]}})
    streams = parse_streams({"flow": {"method": "farneback"}}, views)
    clip = _moving()
    ev = ClipTransform(views, train=False, streams=streams)
    out = ev(clip)
    assert out["flow"].shape == (2, 8, 32, 32) and out["video"].shape == (3, 8, 32, 32)
    moving = out["flow"][0, :-1].abs() > 0.05
    assert float(out["flow"][0, :-1][moving].mean()) > 0.1  # rightwards
    assert torch.all(out["flow"][:, -1] == 0)  # last frame: zero flow
    flipped = ClipTransform(views, train=True, hflip=1.0, crop_scale=None, streams=streams)(clip)
    assert float(flipped["flow"][0, :-1][flipped["flow"][0, :-1].abs() > 0.05].mean()) < -0.1


def test_cached_crop_scales_and_flips_flow() -> None:
    views = parse_views({"video": {"size": [32, 32]}})
    streams = parse_streams({"flow": {"method": "farneback"}}, views)
    tf = ClipTransform(views, train=False, streams=streams)
    stored = tf.degrader(_moving())
    assert stored["flow"].shape == (8, 32, 32, 2) and stored["flow"].dtype == np.uint8
    plain = tf.from_views(stored)["flow"]
    box = {"video": (0, 0, 16, 16), "flow": (0, 0, 16, 16)}
    cropped = tf.finish(stored, boxes=box)["flow"]
    # a 2x enlargement doubles the displacement of what stays in view
    region = plain[:, :, :16, :16]
    up = torch.nn.functional.interpolate(region, size=(32, 32), mode="bilinear")
    torch.testing.assert_close(cropped, 2 * up, atol=0.02, rtol=0.0)
    flipped = tf.finish(stored, flip=True)["flow"]
    torch.testing.assert_close(flipped[0], -plain[0].flip(-1))
    torch.testing.assert_close(flipped[1], plain[1].flip(-1))


@pytest.mark.usefixtures("tiny_synth")
def test_streams_from_cache_equal_decode(data_home: Path, tmp_path: Path) -> None:
    kw = dict(
        root=str(data_home / "synth_actions"),
        views=VIEWS,
        streams=STREAMS,
        num_frames=4,
        stride=1,
        eval_clips=2,
        **TINY,
    )
    plain = SynthActionsDataModule(**kw)
    deg = plain.degrader()
    assert deg.shapes["flow"] == (32, 32, 2) and deg.shapes["mask"] == (32, 32, 1)
    entries = [(str(e[0]), None) for e in plain.all_videos()]
    build_cache(entries, deg, deg.specs(), deg.shapes, tmp_path / "c", progress=False)
    cached = SynthActionsDataModule(cache_dir=str(tmp_path / "c"), **kw)
    for d in (plain, cached):
        d.setup("test")
    for i in (0, 7):
        a, b = plain.test_dataset[i], cached.test_dataset[i]
        assert a["flow"].shape == (2, 4, 32, 32) and a["mask"].shape == (1, 4, 32, 32)
        assert a["flow_lr"].shape == (2, 4, 32, 32) and a["video_lr"].shape == (3, 4, 32, 32)
        for key in ("video", "flow", "mask", "flow_lr", "video_lr"):
            torch.testing.assert_close(a[key], b[key])
        assert float(a["mask"].abs().max()) > 0
    cached.setup("fit")
    item = cached.train_dataset[0]
    assert item["flow"].shape == (2, 4, 32, 32) and torch.isfinite(item["flow"]).all()
    other = SynthActionsDataModule(cache_dir=str(tmp_path / "c"), **{**kw, "streams": None})
    other.setup("test")  # views only: a cache with extra streams still serves them
    assert "flow" not in other.test_dataset[0]
    ra = SynthActionsDataModule(cache_dir=str(tmp_path / "c"), randaugment={"num_ops": 1}, **kw)
    with pytest.raises(ValueError, match="randaugment"):
        ra.setup("fit")


def test_degrader_streams_are_deterministic() -> None:
    views = parse_views(VIEWS)
    deg = ViewDegrader(views, parse_streams(STREAMS, views))
    a, b = deg(_moving()), deg(_moving())
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


@pytest.mark.usefixtures("tiny_synth")
def test_auto_cache_builds_once_and_is_read(data_home: Path) -> None:
    kw = dict(
        root=str(data_home / "synth_actions"),
        views=VIEWS,
        streams=STREAMS,
        num_frames=4,
        auto_cache=True,
        cache_workers=0,
        **TINY,
    )
    dm = SynthActionsDataModule(**kw)
    dm.prepare_data()
    assert dm.cache_dir is not None and (Path(dm.cache_dir) / "index.json").is_file()
    stamp = (Path(dm.cache_dir) / "index.json").stat().st_mtime_ns
    again = SynthActionsDataModule(**kw)
    again.prepare_data()  # reused, not rebuilt
    assert again.cache_dir == dm.cache_dir
    assert (Path(dm.cache_dir) / "index.json").stat().st_mtime_ns == stamp
    again.setup("fit")
    assert again.train_dataset.cache is not None
    assert again.train_dataset[0]["mask"].shape == (1, 4, 32, 32)
