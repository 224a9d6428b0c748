"""Named resolution views and the clip pipeline that feeds them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lowres_har.data.views import ClipTransform, ViewDegrader, parse_views


def _clip(t: int = 6, h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_parse_views_keys_and_errors() -> None:
    views = parse_views(
        {
            "video": {"size": [12, 16], "upsample_to": [32, 32], "blur_sigma": 0.5, "noise": 2},
            "video_hr": {"size": 56, "aspect": "pad", "jpeg_quality": 40},
            "old": {"size": [8, 8], "crop_to_aspect": False},
        }
    )
    assert views["video"].output_size == (32, 32) and views["video"].blur_sigma == 0.5
    assert views["video_hr"].size == (56, 56) and views["video_hr"].aspect == "pad"
    assert views["old"].aspect == "stretch"
    for bad, match in (
        ({"v": {"size": [12, 16], "upsampel_to": 32}}, "unknown keys"),
        ({"v": {"upsample_to": 32}}, "needs a 'size'"),
        ({"v": {"size": 12, "aspect": "fit"}}, "aspect"),
        ({"v": {"size": 12, "jpeg_quality": 0}}, "jpeg_quality"),
        ({"v": {"size": 12, "noise": -1}}, ">= 0"),
        ({}, "at least one"),
    ):
        with pytest.raises(ValueError, match=match):
            parse_views(bad)


def test_degrader_is_deterministic_and_shapes() -> None:
    views = parse_views(
        {"video": {"size": [12, 16], "blur_sigma": 0.7, "jpeg_quality": 50}, "hr": {"size": 32}}
    )
    deg = ViewDegrader(views)
    a, b = deg(_clip()), deg(_clip())
    assert deg.shapes == {"video": (12, 16, 3), "hr": (32, 32, 3)}
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["video"].shape == (6, 12, 16, 3) and a["hr"].shape == (6, 32, 32, 3)
    assert deg.specs()["video"]["jpeg_quality"] == 50


def test_eval_from_views_equals_from_frames() -> None:
    """Without randomness the cache path (degraded views in) equals the decode path."""
    views = parse_views({"video": {"size": [12, 16], "upsample_to": [32, 32]}, "hr": {"size": 24}})
    tf = ClipTransform(views, train=False)
    clip = _clip()
    direct = tf(clip)
    cached = tf.from_views(tf.degrader(clip))
    for name in direct:
        torch.testing.assert_close(direct[name], cached[name])
    assert direct["video"].shape == (3, 6, 32, 32) and direct["hr"].shape == (3, 6, 24, 24)


def test_normalisation_values() -> None:
    views = parse_views({"video": {"size": [2, 2]}})
    tf = ClipTransform(views, train=False, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    out = tf(np.full((1, 4, 4, 3), 255, np.uint8))["video"]
    torch.testing.assert_close(out[:, 0, 0, 0], torch.tensor([2.0, 1.0, 0.5]))


def test_train_augmentations_run_and_are_seeded() -> None:
    views = parse_views({"video": {"size": [12, 16], "upsample_to": [32, 32], "noise": 3.0}})
    tf = ClipTransform(
        views,
        train=True,
        short_side_scale=(100, 120),
        crop_size=(90, 120),
        randaugment={"num_ops": 2, "magnitude": 9},
    )
    clip = _clip()
    torch.manual_seed(3)
    a = tf(clip)["video"]
    torch.manual_seed(3)
    b = tf(clip)["video"]
    torch.manual_seed(4)
    c = tf(clip)["video"]
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (3, 6, 32, 32) and torch.isfinite(a).all()
    torch.manual_seed(3)
    d = tf.from_views(tf.degrader(clip))["video"]
    assert d.shape == (3, 6, 32, 32)


def test_eval_short_side_and_centre_crop_are_fixed() -> None:
    views = parse_views({"video": {"size": [8, 8]}})
    tf = ClipTransform(views, train=False, short_side_scale=(64, 80), crop_size=(64, 64))
    clip = _clip()
    torch.testing.assert_close(tf(clip)["video"], tf(clip)["video"])


def test_noise_only_changes_the_noisy_view() -> None:
    views = parse_views({"clean": {"size": [12, 16]}, "noisy": {"size": [12, 16], "noise": 8.0}})
    tf = ClipTransform(views, train=False, mean=(0, 0, 0), std=(1, 1, 1))
    out = tf(np.full((4, 48, 64, 3), 128, np.uint8))
    assert torch.all(out["clean"] == 128 / 255)
    diff = (out["noisy"] - out["clean"]) * 255
    assert 6.0 < float(diff.std()) < 10.0


def test_cached_crop_is_consistent_across_views() -> None:
    """One relative crop for all views: a vertical edge stays at the same relative place."""
    frame = np.zeros((4, 48, 64, 3), np.uint8)
    frame[:, :, 32:] = 255
    views = parse_views({"a": {"size": [12, 16]}, "b": {"size": [24, 32]}})
    tf = ClipTransform(
        views, train=True, hflip=0.0, crop_scale=(0.3, 0.6), mean=(0,) * 3, std=(1,) * 3
    )
    torch.manual_seed(0)
    for _ in range(5):
        out = tf.from_views(tf.degrader(frame))
        col_a = out["a"][0, 0].mean(0)  # (16,)
        col_b = out["b"][0, 0].mean(0)  # (32,)
        frac_a = float((col_a > 0.5).float().mean())
        frac_b = float((col_b > 0.5).float().mean())
        assert abs(frac_a - frac_b) < 0.15


def test_eval_noise_is_seeded_per_item_and_ranges_parse() -> None:
    views = parse_views({"video": {"size": [12, 16], "noise": [2, 6]}})
    assert views["video"].noise == (2.0, 6.0) and views["video"].has_noise
    tf = ClipTransform(views, train=False)
    clip = np.full((4, 48, 64, 3), 100, np.uint8)
    a, b, c = tf(clip, seed=7)["video"], tf(clip, seed=7)["video"], tf(clip, seed=8)["video"]
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    for bad in (
        {"noise": [5, 2]},
        {"noise": "loud"},
        {"interpolation": "lanczos"},
        {"upsample_interpolation": "cubic"},
        {"jpeg_quality": 70.5},
    ):
        with pytest.raises(ValueError, match="view 'v'"):
            parse_views({"v": {"size": [12, 16], **bad}})


@pytest.mark.parametrize("frames", [1, 42, 43, 100])
def test_long_clips_resize_in_channel_groups(frames: int) -> None:
    """OpenCV resizes at most 128 channels per call: long clips are split into groups."""
    views = parse_views({"video": {"size": [6, 8], "upsample_to": [12, 16]}})
    tf = ClipTransform(views, train=False, mean=(0, 0, 0), std=(1, 1, 1))
    clip = np.random.default_rng(frames).integers(0, 256, (frames, 24, 32, 3), dtype=np.uint8)
    out = tf(clip)["video"]
    assert out.shape == (3, frames, 12, 16)
    # each frame resized on its own gives the same values
    small = tf.degrader(clip)["video"]
    import cv2

    for t in (0, frames - 1):
        ref = cv2.resize(
            small[t].astype(np.float32) / 255, (16, 12), interpolation=cv2.INTER_LINEAR
        )
        np.testing.assert_allclose(out[:, t].permute(1, 2, 0).numpy(), ref, atol=1e-5)
