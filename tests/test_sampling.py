from __future__ import annotations

import numpy as np
import pytest
import torch

from lowres_har.data.sampling import (
    SHORT_POLICIES,
    center_clip,
    gather_frames,
    random_clip,
    segment_indices,
    sliding_windows,
    uniform_clips,
)


def test_random_center_uniform_segment() -> None:
    torch.manual_seed(0)
    for _ in range(20):
        idx = random_clip(40, 8, 4)
        assert len(idx) == 8 and idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < 40
        assert (np.diff(idx) == 4).all()
    np.testing.assert_array_equal(center_clip(10, 4, 1), [3, 4, 5, 6])
    np.testing.assert_array_equal(center_clip(3, 5, 1, short="loop"), [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(center_clip(3, 5, 1, short="repeat_last"), [0, 1, 2, 2, 2])
    clips = uniform_clips(100, 8, 2, 3)
    assert [c[0] for c in clips] == [0, 42, 85] and all(c[-1] < 100 for c in clips)
    np.testing.assert_array_equal(segment_indices(32, 4, random=False), [4, 12, 20, 28])
    seg = segment_indices(32, 4, random=True)
    assert all(8 * i <= s < 8 * (i + 1) for i, s in enumerate(seg))
    np.testing.assert_array_equal(segment_indices(3, 6, random=False), [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError):
        random_clip(0, 4)
    with pytest.raises(ValueError, match="short"):
        center_clip(3, 5, short="mirror")


def test_random_sampling_is_reproducible() -> None:
    torch.manual_seed(7)
    a = [random_clip(100, 8, 2) for _ in range(5)], segment_indices(50, 8, random=True)
    torch.manual_seed(7)
    b = [random_clip(100, 8, 2) for _ in range(5)], segment_indices(50, 8, random=True)
    for x, y in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a[1], b[1])
    starts = {int(random_clip(100, 8, 2)[0]) for _ in range(20)}
    assert len(starts) > 5
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    np.testing.assert_array_equal(
        random_clip(100, 8, generator=g1), random_clip(100, 8, generator=g2)
    )


def test_pad_policy() -> None:
    assert "pad" in SHORT_POLICIES
    np.testing.assert_array_equal(center_clip(3, 5, 1, short="pad"), [0, 1, 2, -1, -1])
    np.testing.assert_array_equal(center_clip(4, 3, 2, short="pad"), [0, 2, -1])
    np.testing.assert_array_equal(random_clip(2, 4, short="pad"), [0, 1, -1, -1])
    clips = uniform_clips(3, 4, 1, 2, short="pad")
    assert all(list(c) == [0, 1, 2, -1] for c in clips)
    # long enough videos never pad
    assert (uniform_clips(50, 8, 2, 4, short="pad")[-1] >= 0).all()


def test_gather_frames() -> None:
    frames = np.arange(1, 4, dtype=np.uint8)[:, None, None, None] * np.ones((3, 2, 2, 3), np.uint8)
    out = gather_frames(frames, center_clip(3, 5, short="pad"))
    assert out.shape == (5, 2, 2, 3) and out.dtype == np.uint8
    assert [int(f.max()) for f in out] == [1, 2, 3, 0, 0]
    assert (out[3:] == 0).all()
    np.testing.assert_array_equal(gather_frames(frames, np.array([2, 0])), frames[[2, 0]])
    # the result is a copy: writing to it leaves the video alone
    out[0] = 9
    assert frames[0].max() == 1
    only_pad = gather_frames(frames, np.array([-1, -1]))
    assert only_pad.shape == (2, 2, 2, 3) and not only_pad.any()
    with pytest.raises(IndexError, match="out of range"):
        gather_frames(frames, np.array([0, 3]))
    with pytest.raises(IndexError, match="out of range"):
        gather_frames(frames, np.array([-2]))
    with pytest.raises(ValueError, match="integer"):
        gather_frames(frames, np.array([0.0, 1.0]))


@pytest.mark.parametrize(
    ("num_video", "num_frames", "stride", "step"),
    [
        (100, 16, 1, None),
        (100, 16, 1, 8),
        (100, 16, 2, None),
        (17, 4, 3, 5),
        (16, 16, 1, None),
        (5, 8, 1, None),
        (1, 3, 2, 1),
        (64, 8, 1, 3),
    ],
)
def test_sliding_windows_cover_every_frame(
    num_video: int, num_frames: int, stride: int, step: int | None
) -> None:
    windows = sliding_windows(num_video, num_frames, stride, step)
    covered = np.zeros(num_video, bool)
    span = (num_frames - 1) * stride + 1
    for indices, start, end in windows:
        assert indices.shape == (num_frames,) and indices.dtype == np.int64
        assert 0 <= start < end <= num_video
        covered[start:end] = True
        if num_video >= span:
            assert end - start == span
            np.testing.assert_array_equal(indices, start + stride * np.arange(num_frames))
    assert covered.all()
    starts = [w[1] for w in windows]
    assert starts == sorted(set(starts)) and starts[0] == 0
    assert windows[-1][2] == num_video  # the last window reaches the end
    gaps = np.diff(starts)
    assert (gaps <= (span if step is None else step)).all()
    if stride == 1:  # every frame is also sampled
        assert set(np.concatenate([w[0] for w in windows]) % num_video) == set(range(num_video))


def test_sliding_windows_exact() -> None:
    windows = sliding_windows(100, 16)
    assert [(s, e) for _, s, e in windows] == [
        (0, 16),
        (16, 32),
        (32, 48),
        (48, 64),
        (64, 80),
        (80, 96),
        (84, 100),
    ]
    assert [w[1] for w in sliding_windows(100, 16, step=8)] == [
        0,
        8,
        16,
        24,
        32,
        40,
        48,
        56,
        64,
        72,
        80,
        84,
    ]
    assert [w[1] for w in sliding_windows(100, 16, 2)] == [0, 31, 62, 69]
    assert len(sliding_windows(96, 16)) == 6  # exact fit: no extra tail window
    ((idx, start, end),) = sliding_windows(10, 16)
    assert (start, end) == (0, 10)
    np.testing.assert_array_equal(idx, np.arange(16) % 10)
    ((idx, _, _),) = sliding_windows(10, 16, short="pad")
    np.testing.assert_array_equal(idx, [*range(10), *[-1] * 6])
    ((idx, _, _),) = sliding_windows(10, 16, short="repeat_last")
    assert idx.max() == 9 and idx[-1] == 9
    with pytest.raises(ValueError, match="step"):
        sliding_windows(100, 16, step=0)
    with pytest.raises(ValueError, match="num_frames"):
        sliding_windows(100, 0)
    with pytest.raises(ValueError, match="no frames"):
        sliding_windows(0, 4)
