from __future__ import annotations

import numpy as np
import pytest
import torch

from lowres_har.data.sampling import center_clip, random_clip, segment_indices, uniform_clips
from lowres_har.data.views import ClipTransform, parse_views
from lowres_har.transforms import (
    Degrade,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    center_crop_to_aspect,
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


def test_sampling() -> None:
    torch.manual_seed(0)
    for _ in range(20):
        idx = random_clip(40, 8, 4)
        assert len(idx) == 8 and idx.min() >= 0 and idx.max() < 40
        assert (np.diff(idx) == 4).all()
    np.testing.assert_array_equal(center_clip(10, 4, 1), [3, 4, 5, 6])
    np.testing.assert_array_equal(center_clip(3, 5, 1, short="loop"), [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(center_clip(3, 5, 1, short="repeat_last"), [0, 1, 2, 2, 2])
    clips = uniform_clips(100, 8, 2, 3)
    assert [c[0] for c in clips] == [0, 42, 85] and all(c[-1] < 100 for c in clips)
    np.testing.assert_array_equal(segment_indices(32, 4, random=False), [4, 12, 20, 28])
    seg = segment_indices(32, 4, random=True)
    assert all(8 * i <= s < 8 * (i + 1) for i, s in enumerate(seg))
    with pytest.raises(ValueError):
        random_clip(0, 4)
