from __future__ import annotations

import numpy as np
import pytest
import torch

import lowres_har.transforms as T
from lowres_har.data.views import ClipTransform, parse_views
from lowres_har.transforms import (
    RANDAUGMENT_OPS,
    CenterCrop,
    Degrade,
    GaussianNoise,
    JpegCompression,
    Normalize,
    RandAugment,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomShortSideScale,
    Resize,
    ToTensor,
    center_crop_to_aspect,
    gaussian_blur,
    jpeg_compress,
    pad_to_aspect,
    randaugment_op,
    resize_clip,
)


def _blocks() -> np.ndarray:
    """(2, 84, 112, 3) clip made of 7×7 constant blocks with distinct values."""
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(2, 12, 16, 3), dtype=np.uint8)
    return small.repeat(7, axis=1).repeat(7, axis=2), small


def test_degrade_is_area_average() -> None:
    clip, small = _blocks()
    padded = np.zeros((2, 112, 112, 3), np.uint8)
    padded[:, 14:98] = clip  # centred 84×112 region holds the blocks
    out = Degrade((12, 16))(padded)
    assert out.shape == (2, 12, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, small)


def test_center_crop_to_aspect() -> None:
    clip = np.zeros((1, 100, 200, 3), np.uint8)
    assert center_crop_to_aspect(clip, 4 / 3).shape == (1, 100, 133, 3)
    assert center_crop_to_aspect(np.zeros((1, 200, 100, 3), np.uint8), 4 / 3).shape == (
        1,
        75,
        100,
        3,
    )


def test_resize_up() -> None:
    out = Resize((32, 32))(np.full((3, 12, 16, 3), 77, np.uint8))
    assert out.shape == (3, 32, 32, 3)
    assert (out == 77).all()


def test_flip_is_clip_consistent() -> None:
    clip = np.random.default_rng(1).integers(0, 255, (5, 8, 10, 3), dtype=np.uint8)
    out = RandomHorizontalFlip(p=1.0)(clip)
    np.testing.assert_array_equal(out, clip[:, :, ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(clip), clip)


def test_random_resized_crop_same_region_every_frame() -> None:
    torch.manual_seed(0)
    base = np.random.default_rng(2).integers(0, 255, (1, 40, 50, 3), dtype=np.uint8)
    clip = base.repeat(6, axis=0)
    crop = RandomResizedCrop(None, scale=(0.3, 0.5))
    out = crop(clip)
    assert out.shape[1] < 40 or out.shape[2] < 50
    for t in range(1, 6):
        np.testing.assert_array_equal(out[t], out[0])
    assert RandomResizedCrop((16, 16))(clip).shape == (6, 16, 16, 3)


def test_to_tensor_and_normalize() -> None:
    clip = np.full((4, 6, 8, 3), 255, np.uint8)
    x = ToTensor()(clip)
    assert x.shape == (3, 4, 6, 8) and x.dtype == torch.float32 and float(x.max()) == 1.0
    y = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(x)
    assert torch.allclose(y, torch.ones_like(y))
    with pytest.raises(ValueError, match="channels"):
        Normalize()(torch.zeros(2, 4, 6, 8))


def test_views_produce_named_tensors() -> None:
    views = parse_views(
        {"video": {"size": [12, 16], "upsample_to": [32, 32]}, "video_hr": {"size": 56}}
    )
    clip = np.random.default_rng(3).integers(0, 255, (8, 112, 112, 3), dtype=np.uint8)
    out = ClipTransform(views, train=True)(clip)
    assert out["video"].shape == (3, 8, 32, 32)
    assert out["video_hr"].shape == (3, 8, 56, 56)
    with pytest.raises(ValueError, match="unknown keys"):
        parse_views({"video": {"size": [12, 16], "upsampel_to": 32}})
    with pytest.raises(ValueError, match="size"):
        parse_views({"video": {"upsample_to": 32}})


# --- degradation: aspect handling -----------------------------------------------------------


def _smooth(shape: tuple[int, int], frames: int = 2, seed: int = 0) -> np.ndarray:
    """Random but spatially smooth RGB clip ``(frames, *shape, 3)`` (bicubic-upsampled noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (frames, max(2, shape[0] // 4), max(2, shape[1] // 4), 3))
    return resize_clip(small.astype(np.uint8), shape, "bicubic")


def _hf_energy(clip: np.ndarray) -> float:
    """Mean squared difference of neighbouring pixels (high-frequency energy)."""
    x = clip.astype(np.float64)
    return float((np.diff(x, axis=1) ** 2).mean() + (np.diff(x, axis=2) ** 2).mean())


def test_degrade_crop_to_aspect_alias() -> None:
    assert Degrade((12, 16)).aspect == "crop"
    assert Degrade((12, 16), "area", True).aspect == "crop"
    assert Degrade((12, 16), "area", False).aspect == "stretch"
    assert Degrade((12, 16), "area", False).crop_to_aspect is False
    assert Degrade((12, 16), aspect="pad").crop_to_aspect is False
    assert Degrade((12, 16), "area", True, aspect="crop").aspect == "crop"
    with pytest.raises(ValueError, match="contradicts"):
        Degrade((12, 16), "area", False, aspect="crop")
    with pytest.raises(ValueError, match="aspect"):
        Degrade((12, 16), aspect="letterbox")
    with pytest.raises(ValueError, match="interpolation"):
        Degrade((12, 16), "lanczos")
    with pytest.raises(ValueError, match="blur_sigma"):
        Degrade((12, 16), blur_sigma=-1.0)
    with pytest.raises(ValueError, match="jpeg_quality"):
        Degrade((12, 16), jpeg_quality=0)
    with pytest.raises(ValueError, match="pad_value"):
        Degrade((12, 16), aspect="pad", pad_value=300)


def test_degrade_stretch_squeezes_whole_frame() -> None:
    rng = np.random.default_rng(4)
    small = rng.integers(0, 256, size=(2, 12, 16, 3), dtype=np.uint8)
    clip = small.repeat(7, axis=1).repeat(5, axis=2)  # 84×80: 7×5 blocks, aspect 80/84
    out = Degrade((12, 16), aspect="stretch")(clip)
    np.testing.assert_array_equal(out, small)
    # cropping to 4:3 instead keeps only 60 of the 84 rows, so the result differs
    cropped = Degrade((12, 16), aspect="crop")(clip)
    assert cropped.shape == out.shape and not np.array_equal(cropped, small)


def test_degrade_pad_keeps_whole_content() -> None:
    rng = np.random.default_rng(5)
    small = rng.integers(1, 256, size=(2, 12, 12, 3), dtype=np.uint8)
    clip = small.repeat(5, axis=1).repeat(5, axis=2)  # 60×60 square content
    out = Degrade((12, 16), aspect="pad")(clip)  # padded to 60×80: 10 columns (2 LR px) a side
    assert out.shape == (2, 12, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, 2:14], small)
    assert (out[:, :, :2] == 0).all() and (out[:, :, 14:] == 0).all()
    grey = Degrade((12, 16), aspect="pad", pad_value=(10, 20, 30))(clip)
    np.testing.assert_array_equal(grey[:, :, 2:14], small)
    assert (grey[:, :, :2] == np.array([10, 20, 30], np.uint8)).all()
    # a crop of the same frame loses the top and bottom rows of the content
    crop = Degrade((12, 16), aspect="crop")(clip)
    assert not np.array_equal(crop[:, :, 2:14], small)


def test_pad_to_aspect_geometry() -> None:
    wide = np.full((1, 10, 40, 3), 7, np.uint8)  # 4:1 → rows added
    out = pad_to_aspect(wide, 4 / 3)
    assert out.shape == (1, 30, 40, 3)
    np.testing.assert_array_equal(out[:, 10:20], wide)
    assert (out[:, :10] == 0).all() and (out[:, 20:] == 0).all()
    tall = np.full((1, 9, 4, 1), 9, np.uint8)  # needs 12 columns: 8 added, 4 a side
    out = pad_to_aspect(tall, 4 / 3, value=3)
    assert out.shape == (1, 9, 12, 1)
    np.testing.assert_array_equal(out[:, :, 4:8], tall)
    assert (out[:, :, :4] == 3).all() and (out[:, :, 8:] == 3).all()
    odd = pad_to_aspect(np.ones((1, 3, 2, 1), np.uint8), 1.0)  # one column: goes right
    np.testing.assert_array_equal(odd[0, :, :, 0], [[1, 1, 0]] * 3)
    same = np.ones((1, 3, 4, 3), np.uint8)
    assert pad_to_aspect(same, 4 / 3) is same
    with pytest.raises(ValueError, match="channels"):
        pad_to_aspect(tall, 4 / 3, value=(1, 2, 3))


# --- degradation: blur, JPEG, noise ---------------------------------------------------------


def test_blur_reduces_high_frequency_energy() -> None:
    clip = np.random.default_rng(6).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    energies = [_hf_energy(gaussian_blur(clip, s)) for s in (0.0, 0.5, 1.0, 2.0)]
    assert energies[0] == _hf_energy(clip)
    assert all(a > 1.5 * b for a, b in zip(energies, energies[1:], strict=False))
    src = _smooth((96, 128), seed=7)
    sharp, soft = Degrade((12, 16))(src), Degrade((12, 16), blur_sigma=1.0)(src)
    assert sharp.shape == soft.shape == (2, 12, 16, 3) and soft.dtype == np.uint8
    assert _hf_energy(soft) < 0.6 * _hf_energy(sharp)
    # an anisotropic sigma only blurs along its axis: stripes along that axis are untouched
    stripes = np.broadcast_to(clip[:, :1], clip.shape).copy()  # constant down every column
    np.testing.assert_array_equal(gaussian_blur(stripes, (3.0, 0.0)), stripes)
    assert _hf_energy(gaussian_blur(stripes, (0.0, 1.0))) < 0.5 * _hf_energy(stripes)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(clip, -1.0)


def test_blur_sigma_is_in_output_pixels() -> None:
    big = _smooth((48, 64), seed=8)
    half = resize_clip(big, (24, 32), "area")  # the same scene seen at half the resolution
    degrade = Degrade((12, 16), blur_sigma=1.0)
    a = degrade(half).astype(np.float64)
    b = degrade(big).astype(np.float64)
    same_setting = np.abs(a - b).mean()
    assert same_setting < 1.5 and np.abs(a - b).max() <= 4
    # an unscaled sigma (the small source's 2 pixels used on the big one) is clearly different
    unscaled = resize_clip(gaussian_blur(big, 2.0), (12, 16), "area").astype(np.float64)
    assert np.abs(unscaled - a).mean() > 3 * same_setting
    assert np.abs(Degrade((12, 16), blur_sigma=0.5)(big) - b).mean() > 3 * same_setting


def test_blur_on_large_source_matches_exact_psf() -> None:
    src = _smooth((192, 256), seed=9)  # 16 source pixels per output pixel: shrunk before blur
    out = Degrade((12, 16), blur_sigma=0.7)(src).astype(np.int64)
    exact = resize_clip(gaussian_blur(src, 0.7 * 16), (12, 16), "area").astype(np.int64)
    assert np.abs(out - exact).max() <= 2


def test_jpeg_compression() -> None:
    # a natural-looking frame: smooth grey shading, a mild colour tint and fine grey texture
    grey = _smooth((48, 64), seed=10).astype(np.int16).mean(axis=3, keepdims=True)
    texture = np.random.default_rng(1).integers(-6, 7, (2, 48, 64, 1))
    clip = np.clip(grey + texture + np.array([8, 0, -8]), 0, 255).astype(np.uint8)
    q95, q10 = jpeg_compress(clip, 95), jpeg_compress(clip, 10)
    assert q95.shape == clip.shape and q95.dtype == np.uint8
    err95 = np.abs(q95.astype(np.float64) - clip).mean()
    err10 = np.abs(q10.astype(np.float64) - clip).mean()
    assert 0 < err95 < 2.5 and err10 > 2 * err95
    np.testing.assert_array_equal(jpeg_compress(clip, 10), q10)  # deterministic
    np.testing.assert_array_equal(JpegCompression(10)(clip), q10)
    # saturated colour detail is smeared by 4:2:0 chroma subsampling even at quality 100
    colour = np.random.default_rng(2).integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    colour = colour.repeat(8, axis=1).repeat(8, axis=2)
    err420 = np.abs(jpeg_compress(colour, 100).astype(np.float64) - colour).mean()
    err444 = np.abs(JpegCompression(100, "444")(colour).astype(np.float64) - colour).mean()
    assert err444 < 1.0 < err420
    lr = Degrade((12, 16))(clip)
    np.testing.assert_array_equal(Degrade((12, 16), jpeg_quality=30)(clip), jpeg_compress(lr, 30))
    grey = jpeg_compress(clip[..., :1], 50)
    assert grey.shape == (2, 48, 64, 1)
    # colour channels keep their order (a red patch stays red)
    red = np.zeros((1, 16, 16, 3), np.uint8)
    red[..., 0] = 200
    assert tuple(jpeg_compress(red, 90)[0, 8, 8]) == pytest.approx((200, 0, 0), abs=6)
    with pytest.raises(ValueError, match="jpeg_quality"):
        JpegCompression(101)
    with pytest.raises(ValueError, match="channels"):
        jpeg_compress(np.zeros((1, 8, 8, 2), np.uint8), 50)
    with pytest.raises(ValueError, match="uint8"):
        jpeg_compress(np.zeros((1, 8, 8, 3), np.float32), 50)


def test_gaussian_noise_statistics() -> None:
    torch.manual_seed(0)
    clip = np.full((4, 24, 32, 3), 128, np.uint8)
    out = GaussianNoise(8.0)(clip)
    assert out.shape == clip.shape and out.dtype == np.uint8
    diff = out.astype(np.float64) - 128
    assert abs(diff.std() - 8.0) < 0.4 and abs(diff.mean()) < 0.4
    assert not np.array_equal(out[0], out[1])  # fresh noise for every frame
    stds = []
    for _ in range(5):
        d = GaussianNoise((2.0, 20.0))(clip).astype(np.float64) - 128
        stds.append(d.std())
    assert all(1.8 < s < 20.5 for s in stds) and max(stds) - min(stds) > 1.0
    mono = GaussianNoise(8.0, per_channel=False)(clip)
    np.testing.assert_array_equal(mono[..., 0], mono[..., 2])
    bright = GaussianNoise(20.0)(np.full((2, 16, 16, 3), 250, np.uint8))
    assert bright.min() > 150  # clipped at 255, never wrapped around to black
    assert GaussianNoise(0.0)(clip) is clip
    torch.manual_seed(3)
    a = GaussianNoise(5.0)(clip)
    torch.manual_seed(3)
    np.testing.assert_array_equal(GaussianNoise(5.0)(clip), a)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    np.testing.assert_array_equal(
        GaussianNoise(5.0, generator=g1)(clip), GaussianNoise(5.0, generator=g2)(clip)
    )
    with pytest.raises(ValueError, match="std"):
        GaussianNoise((5.0, 1.0))


# --- augmentation ---------------------------------------------------------------------------


def _ramp_clip(frames: int, h: int, w: int) -> np.ndarray:
    """Frame ``t`` is a fixed random frame plus ``t`` (so crops of all frames can be compared)."""
    base = np.random.default_rng(11).integers(0, 200, (1, h, w, 3))
    return (base + np.arange(frames)[:, None, None, None]).astype(np.uint8)


def test_random_short_side_scale() -> None:
    torch.manual_seed(0)
    scale = RandomShortSideScale(20, 30)
    shorts = set()
    for _ in range(12):
        out = scale(np.zeros((3, 40, 60, 3), np.uint8))
        h, w = out.shape[1:3]
        assert 20 <= h <= 30 and w == round(60 * h / 40)
        shorts.add(h)
        tall = scale(np.zeros((1, 90, 30, 3), np.uint8))
        assert 20 <= tall.shape[2] <= 30 and tall.shape[1] == 3 * tall.shape[2]
    assert len(shorts) > 2
    with pytest.raises(ValueError, match="min_size"):
        RandomShortSideScale(30, 20)


def test_random_and_center_crop_same_window_every_frame() -> None:
    clip = _ramp_clip(5, 20, 30)
    torch.manual_seed(0)
    positions = set()
    for _ in range(8):
        out = RandomCrop((8, 12))(clip)
        assert out.shape == (5, 8, 12, 3)
        for t in range(5):
            np.testing.assert_array_equal(out[t].astype(int) - t, out[0].astype(int))
        # locate the window in frame 0
        hits = [
            (y, x)
            for y in range(13)
            for x in range(19)
            if np.array_equal(clip[0, y : y + 8, x : x + 12], out[0])
        ]
        assert len(hits) == 1
        positions.add(hits[0])
    assert len(positions) > 1
    np.testing.assert_array_equal(CenterCrop((8, 12))(clip), clip[:, 6:14, 9:21])
    np.testing.assert_array_equal(RandomCrop((20, 30))(clip), clip)
    with pytest.raises(ValueError, match="larger than the frames"):
        RandomCrop((21, 30))(clip)
    with pytest.raises(ValueError, match="larger than the frames"):
        CenterCrop(40)(clip)


def test_random_transforms_reproducible_under_manual_seed() -> None:
    clip = _ramp_clip(4, 24, 32)
    pipeline = T.Compose(
        [
            RandomShortSideScale(16, 24),
            RandomCrop(14),
            RandomResizedCrop(None, scale=(0.4, 1.0)),
            RandomHorizontalFlip(),
            RandAugment(num_ops=3, magnitude=12),
            GaussianNoise((1.0, 6.0)),
        ]
    )
    outs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        outs.append(pipeline(clip))
    np.testing.assert_array_equal(outs[0], outs[1])
    distinct = set()
    for seed in range(6):
        torch.manual_seed(seed)
        distinct.add(pipeline(clip).tobytes())
    assert len(distinct) > 3
    g = torch.Generator().manual_seed(2)
    a = RandomCrop(10, generator=g)(clip)
    g.manual_seed(2)
    np.testing.assert_array_equal(RandomCrop(10, generator=g)(clip), a)


def _low_contrast(h: int, w: int, seed: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(40, 200, (h, w, 3)).astype(np.uint8)


@pytest.mark.parametrize("op", RANDAUGMENT_OPS)
def test_randaugment_op_is_clip_consistent(op: str) -> None:
    for h, w in ((12, 16), (33, 47)):
        frame = _low_contrast(h, w)
        same = np.repeat(frame[None], 4, axis=0)
        other = _low_contrast(h, w, seed=13)
        mixed = np.stack([frame, other, frame])
        for magnitude in (1, 9, 20, 30):
            level = magnitude / 30
            for sign in (1, -1):
                out = randaugment_op(same, op, level, sign)
                assert out.shape == same.shape and out.dtype == np.uint8
                for t in range(1, 4):
                    np.testing.assert_array_equal(out[t], out[0])
                out = randaugment_op(mixed, op, level, sign)
                np.testing.assert_array_equal(out[2], out[0])
        # the op does something at full strength (identity excepted) ...
        full = randaugment_op(same, op, 1.0, 1)
        assert np.array_equal(full, same) == (op == "identity")
        # ... and nothing at level 0 unless it has no magnitude
        zero = randaugment_op(same, op, 0.0, -1)
        if op not in ("auto_contrast", "equalize"):
            np.testing.assert_array_equal(zero, same)


def test_randaugment_ops_values() -> None:
    frame = _low_contrast(12, 16)
    clip = frame[None]
    auto = randaugment_op(clip, "auto_contrast", 0.0)
    assert auto.reshape(-1, 3).min(axis=0).tolist() == [0, 0, 0]
    assert auto.reshape(-1, 3).max(axis=0).tolist() == [255, 255, 255]
    eq = randaugment_op(clip, "equalize", 0.0)
    assert eq.max() > 240 and eq.min() < 15  # histogram spread over the full range
    np.testing.assert_array_equal(randaugment_op(clip, "solarize", 1.0), 255 - clip)
    extremes = np.array([0, 100, 200, 255], np.uint8).reshape(1, 1, 4, 1).repeat(3, axis=3)
    np.testing.assert_array_equal(randaugment_op(extremes, "solarize", 0.0), extremes)
    half = randaugment_op(extremes, "solarize", 0.5)[0, 0, :, 0]  # threshold 128
    assert half.tolist() == [0, 100, 55, 0]
    np.testing.assert_array_equal(randaugment_op(clip, "posterize", 1.0), clip & 0xF0)
    bright = randaugment_op(clip, "brightness", 0.5, 1).astype(np.float64)  # factor 1.45
    assert np.abs(bright - np.minimum(clip * 1.45, 255)).max() <= 0.5 + 1e-4
    grey = randaugment_op(clip, "color", 1.0, -1)  # factor 0.1: nearly grey
    assert (
        np.abs(np.diff(grey.astype(int), axis=3)).mean()
        < 0.2 * np.abs(np.diff(clip.astype(int), axis=3)).mean()
    )
    low = randaugment_op(clip, "contrast", 1.0, -1)
    assert low.astype(float).std() < 0.2 * clip.astype(float).std()
    right = randaugment_op(clip, "translate_x", 1.0, 1)  # 0.45 × 16 → 7 columns
    np.testing.assert_array_equal(right[:, :, 7:], clip[:, :, :-7])
    assert (right[:, :, :7] == 0).all()
    up = randaugment_op(clip, "translate_y", 0.5, -1, fill=(1, 2, 3))  # 0.225 × 12 → 3 rows
    np.testing.assert_array_equal(up[:, :-3], clip[:, 3:])
    assert (up[:, -3:] == np.array([1, 2, 3], np.uint8)).all()
    rot = randaugment_op(clip, "rotate", 1.0, 1)
    assert (rot[0, 0, 0] == 0).all()  # a 30° turn uncovers the corners
    np.testing.assert_array_equal(rot[:, 5:7, 7:9], clip[:, 5:7, 7:9])  # centre stays
    sharp = randaugment_op(clip, "sharpness", 1.0, 1)
    np.testing.assert_array_equal(sharp[:, 0], clip[:, 0])  # PIL keeps the border
    assert _hf_energy(sharp) > _hf_energy(clip)
    with pytest.raises(ValueError, match="unknown RandAugment op"):
        randaugment_op(clip, "invert", 0.5)
    with pytest.raises(ValueError, match="RGB"):
        randaugment_op(clip[..., :1], "rotate", 0.5)
    with pytest.raises(ValueError, match="uint8"):
        RandAugment()(clip.astype(np.float32))


def test_randaugment_draws_once_per_clip() -> None:
    same = np.repeat(_low_contrast(12, 16)[None], 6, axis=0)
    torch.manual_seed(0)
    aug = RandAugment(num_ops=2, magnitude=15)
    seen = set()
    for _ in range(10):
        out = aug(same)
        for t in range(1, 6):
            np.testing.assert_array_equal(out[t], out[0])
        seen.add(out.tobytes())
    assert len(seen) > 5
    torch.manual_seed(4)
    picks = aug.draw()
    torch.manual_seed(4)
    expected = same
    for name, sign in picks:
        expected = randaugment_op(expected, name, aug.level, sign)
    np.testing.assert_array_equal(aug(same), expected)
    assert RandAugment(num_ops=0)(same) is same
    only = RandAugment(num_ops=4, ops=["identity"])
    assert all(name == "identity" for name, _ in only.draw())
    with pytest.raises(ValueError, match="magnitude"):
        RandAugment(magnitude=31)
    with pytest.raises(ValueError, match="ops"):
        RandAugment(ops=["flip"])


def test_transforms_exports() -> None:
    for name in T.__all__:
        assert getattr(T, name) is not None
    for name in ("GaussianNoise", "RandAugment", "RandomCrop", "CenterCrop", "pad_to_aspect"):
        assert name in T.__all__
