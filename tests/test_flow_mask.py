"""Optical flow and slack mask (MSN preprocessing streams) on real and synthetic clips."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from lowres_har.data.io import read_video
from lowres_har.transforms import (
    FLOW_METHODS,
    Degrade,
    flow_from_uint8,
    flow_to_uint8,
    mask_from_uint8,
    mask_to_uint8,
    optical_flow,
    slack_mask,
    slack_motion_energy,
)
from lowres_har.transforms.flow import TVL1_OPENCV_DEFAULTS


@pytest.fixture(scope="module")
def real_lr(real_clips: Path) -> np.ndarray:
    """16 frames of a real UCF101 clip degraded to 32×32, uint8 (16, 32, 32, 3)."""
    frames, _ = read_video(real_clips / "mmaction2" / "tests_data_test.avi", num_frames=16)
    return Degrade((32, 32))(frames)


def square_clip(
    n: int, dx: int, dy: int, *, size: int = 32, side: int = 10, top: int = 8, left: int = 10
) -> np.ndarray:
    """A textured square translating by ``(dx, dy)`` pixels per frame, uint8 (n, size, size, 3).

    The square's top-left corner in frame ``t`` is ``(top + dy * t, left + dx * t)``.
    """
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(-40, 40, (side, side)).astype(np.float32), (0, 0), 1.0)
    out = []
    for t in range(n):
        img = np.full((size, size), 40, np.float32)
        y0, x0 = top + dy * t, left + dx * t
        img[y0 : y0 + side, x0 : x0 + side] = 190 + texture
        soft = cv2.GaussianBlur(img, (0, 0), 0.8)
        out.append(np.repeat(np.clip(soft, 0, 255).astype(np.uint8)[..., None], 3, axis=-1))
    return np.stack(out)


# ----------------------------------------------------------------------------- optical flow


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_flow_real_clip_finite_and_varied(real_lr: np.ndarray, method: str) -> None:
    flow = optical_flow(real_lr, method)
    assert flow.shape == (16, 32, 32, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()
    assert flow.min() >= -1 and flow.max() <= 1
    assert flow[:-1].std() > 1e-3  # the hands move: not a constant field
    assert np.abs(flow[:-1]).max() > 0.05
    assert not flow[-1].any()  # last="zero"


@pytest.mark.parametrize("method", FLOW_METHODS)
@pytest.mark.parametrize(("dx", "dy"), [(2, -1), (-1, 1), (0, 2)])
def test_flow_translating_square(method: str, dx: int, dy: int) -> None:
    clip = square_clip(4, dx, dy)
    flow = optical_flow(clip, method, bound=None)
    for t in range(3):  # interior of the square in frame t (1 px margin)
        y0, x0 = 8 + dy * t, 10 + dx * t
        med = np.median(flow[t, y0 + 1 : y0 + 9, x0 + 1 : x0 + 9].reshape(-1, 2), axis=0)
        assert abs(med[0] - dx) < 0.25 and abs(med[1] - dy) < 0.25, (t, med)
    # normalised output is the clipped raw flow over the bound
    norm = optical_flow(clip, method, bound=1.5)
    np.testing.assert_allclose(norm, np.clip(flow, -1.5, 1.5) / 1.5, atol=1e-6)


def test_flow_last_frame_convention() -> None:
    clip = square_clip(5, 1, 1)
    zero = optical_flow(clip, "farneback")
    rep = optical_flow(clip, "farneback", last="repeat")
    np.testing.assert_array_equal(zero[:-1], rep[:-1])
    assert not zero[-1].any()
    np.testing.assert_array_equal(rep[-1], rep[-2])
    assert np.abs(rep[-1]).max() > 0.1
    single = optical_flow(clip[:1], "tvl1", last="repeat")
    assert single.shape == (1, 32, 32, 2) and not single.any()


def test_flow_settings_reach_opencv() -> None:
    clip = square_clip(3, 2, -1)
    fast = optical_flow(clip, "tvl1", bound=None)
    full = optical_flow(clip, "tvl1", bound=None, **TVL1_OPENCV_DEFAULTS)
    coarse = optical_flow(clip, "tvl1", bound=None, nscales=1, warps=1, epsilon=0.5)
    assert not np.array_equal(fast, full)
    # one scale and early stopping cannot follow a 2 px jump: the settings were used
    assert np.abs(coarse[0, 9:17, 11:19, 0] - 2).mean() > np.abs(full[0, 9:17, 11:19, 0] - 2).mean()
    chained = optical_flow(clip, "tvl1", bound=None, useInitialFlow=True)
    assert np.isfinite(chained).all()
    dis = optical_flow(clip, "dis", bound=None, preset="ultrafast", finest_scale=0)
    assert np.isfinite(dis).all()


def test_flow_rejects_bad_input() -> None:
    clip = square_clip(3, 1, 0)
    with pytest.raises(ValueError, match="uint8"):
        optical_flow(clip.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        optical_flow(clip[..., 0])
    with pytest.raises(ValueError, match="method"):
        optical_flow(clip, "lucas")
    with pytest.raises(ValueError, match="last"):
        optical_flow(clip, last="copy")
    with pytest.raises(ValueError, match="bound"):
        optical_flow(clip, bound=0)
    with pytest.raises(TypeError, match="innerIterations"):
        optical_flow(clip, "tvl1", innerIterations=5)  # OpenCV spells it innnerIterations
    with pytest.raises(ValueError, match="too small|width or height|OpenCV failed"):
        optical_flow(clip[:, :4, :4], "dis")


def test_flow_uint8_round_trip(real_lr: np.ndarray) -> None:
    flow = optical_flow(real_lr, "dis")
    q = flow_to_uint8(flow)
    assert q.dtype == np.uint8 and q.shape == flow.shape
    back = flow_from_uint8(q)
    assert np.abs(back - flow).max() <= 0.5 / 127 + 1e-6
    edges = np.array([-1.0, 0.0, 1.0], np.float32)
    assert flow_to_uint8(edges).tolist() == [1, 128, 255]
    np.testing.assert_array_equal(flow_from_uint8(flow_to_uint8(edges)), edges)
    np.testing.assert_allclose(flow_from_uint8(q, bound=3.0), back * 3.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        flow_to_uint8(optical_flow(square_clip(3, 2, 0), "dis", bound=None))
    with pytest.raises(ValueError, match="NaN"):
        flow_to_uint8(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match="uint8"):
        flow_from_uint8(back)


# ----------------------------------------------------------------------------- slack mask


def gauss3(img: np.ndarray, sigma: float) -> np.ndarray:
    """3×3 Gaussian (µ = 0) with reflect-101 borders, written out independently of OpenCV."""
    w = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma**2))
    w /= w.sum()
    p = np.pad(img.astype(np.float64), 1, mode="reflect")
    rows = w[0] * p[:-2] + w[1] * p[1:-1] + w[2] * p[2:]
    return w[0] * rows[:, :-2] + w[1] * rows[:, 1:-1] + w[2] * rows[:, 2:]


def laplace3(img: np.ndarray) -> np.ndarray:
    """5-point 3×3 Laplacian with reflect-101 borders."""
    p = np.pad(img, 1, mode="reflect")
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4 * p[1:-1, 1:-1]


def gray01(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255


def test_mask_real_clip(real_lr: np.ndarray) -> None:
    mask, moved = slack_mask(real_lr, return_motion=True)
    assert mask.shape == (16, 32, 32) and mask.dtype == np.float32
    assert np.isfinite(mask).all()
    assert moved  # a real action clip scores above tau = 0.1
    assert math.isclose(float(np.abs(mask).max()), 1.0, rel_tol=1e-6)
    assert mask.std() > 1e-3
    back = mask_from_uint8(mask_to_uint8(mask))
    assert np.abs(back - mask).max() <= 0.5 / 127 + 1e-6


def test_mask_static_clip_is_laplacian(real_lr: np.ndarray) -> None:
    clip = np.repeat(real_lr[:1], 6, axis=0)
    raw, moved = slack_mask(clip, normalize=False, return_motion=True)
    assert not moved
    assert not slack_motion_energy(clip).any()
    expected = laplace3(gauss3(gray01(clip[0]), 0.8))
    for m in raw:
        np.testing.assert_allclose(m, expected, atol=2e-5)
    norm = slack_mask(clip)
    np.testing.assert_allclose(norm, raw / np.abs(raw).max(), atol=1e-6)


def test_mask_moving_clip_takes_motion_branch() -> None:
    clip = square_clip(6, 2, 1)
    raw, moved = slack_mask(clip, normalize=False, return_motion=True)
    assert moved
    energy = slack_motion_energy(clip)
    assert energy.mean() > 0.1
    for t in range(6):
        expected = energy[t] * laplace3(gauss3(gray01(clip[t]), 0.8))
        np.testing.assert_allclose(raw[t], expected, atol=1e-4)
    # the motion frames light up the square's path, not the still background
    assert energy[0, 6:22, 8:26].mean() > 20 * energy[0, 26:, :6].mean()


def reference_energy(clip: np.ndarray, k: int, sigma: float = 0.8) -> np.ndarray:
    """A_n frame by frame: forward window of k differences, last difference repeated."""
    smooth = [gauss3(gray01(f), sigma).astype(np.float32) for f in clip]
    grads = []
    for f in smooth:
        gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=5, borderType=cv2.BORDER_REFLECT_101)
        gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=5, borderType=cv2.BORDER_REFLECT_101)
        grads.append(np.sqrt(gx.astype(np.float64) ** 2 + gy.astype(np.float64) ** 2))
    diffs = [np.abs(grads[i + 1] - grads[i]) for i in range(len(clip) - 1)]
    out = []
    for n in range(len(clip)):
        window = [diffs[min(j, len(diffs) - 1)] for j in range(n, n + k)]
        out.append(gauss3(sum(window) / k, sigma))
    return np.stack(out)


@pytest.mark.parametrize("n", [7, 8, 9])
def test_mask_window_extension(n: int) -> None:
    # the step changes every frame so each difference frame is distinct
    lefts = [2, 3, 5, 8, 12, 13, 15, 18, 20][:n]
    clip = np.stack([square_clip(1, 0, 0, left=x)[0] for x in lefts])
    energy = slack_motion_energy(clip, k=3)
    assert energy.shape == (n, 32, 32)
    assert slack_mask(clip).shape == (n, 32, 32)
    np.testing.assert_allclose(energy, reference_energy(clip, 3), rtol=1e-4, atol=1e-4)
    # documented extension: A_N = A_{N-1} = G * g_{N-1}, A_{N-2} = G * (g_{N-2} + 2 g_{N-1}) / 3
    np.testing.assert_allclose(energy[-1], energy[-2], atol=1e-5)
    assert not np.allclose(energy[-3], energy[-2], atol=1e-3)


def test_mask_many_frames_and_single_frame(real_lr: np.ndarray) -> None:
    # more frames than OpenCV takes as channels in one call (128)
    clip = np.concatenate([square_clip(70, 0, 0, left=9), square_clip(70, 0, 0, left=11)])
    energy = slack_motion_energy(clip, k=2)
    ref = reference_energy(clip[60:], 2)
    np.testing.assert_allclose(energy[60:], ref, rtol=1e-4, atol=1e-4)
    assert energy[69].max() > 1 and energy[:68].max() < 1e-6
    one, moved = slack_mask(real_lr[:1], return_motion=True)
    assert one.shape == (1, 32, 32) and not moved and np.isfinite(one).all()


def test_mask_tau_boundary(real_lr: np.ndarray) -> None:
    clip = real_lr[:8]
    score = float(slack_motion_energy(clip).mean(dtype=np.float64))
    assert score > 0
    _, at = slack_mask(clip, tau=score, return_motion=True)
    _, below = slack_mask(clip, tau=float(np.nextafter(score, -np.inf)), return_motion=True)
    assert not at and below
    lap = slack_mask(clip, tau=score, normalize=False)
    motion = slack_mask(clip, tau=0.0, normalize=False)
    np.testing.assert_allclose(motion, lap * slack_motion_energy(clip), atol=1e-5)


def test_mask_rescale_pads_to_aspect(real_lr: np.ndarray) -> None:
    flat = np.full((4, 24, 40, 3), 90, np.uint8)  # wide frames: rows are added to reach 1:1
    mask = slack_mask(flat, size=(32, 32))
    assert mask.shape == (4, 32, 32) and not mask.any()  # replicate padding adds no edge
    black = slack_mask(flat, size=32, pad_mode="constant")
    assert np.abs(black).max() == 1
    assert np.abs(black[:, 11:21]).max() < 1e-4  # the black border edges only: rows ~6 and ~25
    assert np.abs(black[:, 4:9]).max() > 0.5 and np.abs(black[:, 23:28]).max() > 0.5
    assert slack_mask(real_lr[:4], size=(16, 12)).shape == (4, 16, 12)


def test_mask_rejects_bad_input(real_lr: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        slack_mask(real_lr.astype(np.float32))
    with pytest.raises(ValueError, match="sobel_ksize"):
        slack_mask(real_lr, sobel_ksize=4)
    with pytest.raises(ValueError, match="k must"):
        slack_mask(real_lr, k=0)
    with pytest.raises(ValueError, match="sigma"):
        slack_mask(real_lr, sigma=0.0)
    with pytest.raises(ValueError, match="tau"):
        slack_mask(real_lr, tau=float("nan"))
    with pytest.raises(ValueError, match="size"):
        slack_mask(real_lr, size=(0, 32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        mask_to_uint8(slack_mask(real_lr, normalize=False) * 100)
