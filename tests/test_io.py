from __future__ import annotations

import csv
import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lowres_har.data.io import (
    _REORDER_WINDOW,
    VideoDecodeError,
    frame_files,
    probe_video,
    read_video,
    write_video,
)


def _clip(t: int = 10, h: int = 32, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [
        np.stack([(xx * 5 + 20 * i) % 256, (yy * 7) % 256, np.full_like(xx, 128)], -1)
        for i in range(t)
    ]
    return np.stack(frames).astype(np.uint8)


def _flat(values: list[int], h: int = 16, w: int = 32) -> np.ndarray:
    """Frames of one grey level each, easy to recognise after lossy coding."""
    return np.stack([np.full((h, w, 3), v, np.uint8) for v in values])


def _ids(frames: np.ndarray, levels: list[int]) -> list[int]:
    """Which of the grey ``levels`` each frame shows (lossy coding moves them by a unit or two)."""
    means = frames.reshape(len(frames), -1).mean(1)
    ids = [int(np.abs(np.array(levels) - m).argmin()) for m in means]
    assert all(abs(levels[i] - m) < 4 for i, m in zip(ids, means, strict=True))
    return ids


def _encode(
    path: Path,
    frames: np.ndarray,
    *,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts_ms: list[int] | None = None,
    rotation: float | None = None,
    src_format: str = "rgb24",
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write ``frames`` straight through PyAV (irregular pts, rotation, pixel formats)."""
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        if pts_ms is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format=src_format)
            if pts_ms is not None:
                frame.pts = pts_ms[i]
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# --------------------------------------------------------------------------------------------
# write / read round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,codec", [(".mp4", "h264"), (".avi", "mpeg4"), (".avi", "mjpeg")])
def test_write_read_round_trip(tmp_path: Path, suffix: str, codec: str) -> None:
    clip = _clip()
    path = write_video(tmp_path / f"a{suffix}", clip, fps=12, codec=codec)
    frames, meta = read_video(path)
    assert frames.shape == clip.shape and frames.dtype == np.uint8
    assert meta.num_frames == 10 and meta.fps == pytest.approx(12)
    assert np.abs(frames.astype(int) - clip.astype(int)).mean() < 12
    sub, _ = read_video(path, indices=[3, 1, 3])
    np.testing.assert_array_equal(sub, frames[[3, 1, 3]])
    assert meta.complete and meta.codec == codec and meta.rotation == 0
    assert meta.frame_indices == tuple(range(10))
    np.testing.assert_allclose(meta.timestamps, np.arange(10) / 12, atol=1e-3)
    assert meta.duration == pytest.approx(10 / 12, abs=1e-3)


def test_odd_size_is_padded(tmp_path: Path) -> None:
    frames, _ = read_video(write_video(tmp_path / "odd.mp4", _clip(3, 15, 21)))
    assert frames.shape == (3, 16, 22, 3)


@pytest.mark.parametrize("suffix,codec", [(".mp4", "h264"), (".avi", "mpeg4"), (".mkv", "mjpeg")])
def test_write_is_deterministic(tmp_path: Path, suffix: str, codec: str) -> None:
    clip = _clip(4)
    a = write_video(tmp_path / f"a{suffix}", clip, codec=codec).read_bytes()
    b = write_video(tmp_path / f"b{suffix}", clip, codec=codec).read_bytes()
    assert a == b
    c = write_video(tmp_path / f"c{suffix}", clip[::-1], codec=codec).read_bytes()
    assert c != a


@pytest.mark.parametrize("suffix,codec", [(".mp4", "h264"), (".avi", "mpeg4")])
def test_write_without_bitexact_still_decodes(tmp_path: Path, suffix: str, codec: str) -> None:
    clip = _clip(5)
    fast = write_video(tmp_path / f"fast{suffix}", clip, codec=codec, bitexact=False)
    exact = write_video(tmp_path / f"exact{suffix}", clip, codec=codec)
    a, _ = read_video(fast)
    b, _ = read_video(exact)
    assert a.shape == b.shape == clip.shape
    # the same encoder settings apart from the SIMD / bit-exact switch: nearly the same pixels
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_write_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", _clip(2).astype(np.float32))
    with pytest.raises(ValueError, match="T >= 1"):
        write_video(tmp_path / "x.mp4", _clip(2)[:0])
    with pytest.raises(ValueError, match="codec"):
        write_video(tmp_path / "x.mp4", _clip(2), codec="vp9")


# --------------------------------------------------------------------------------------------
# ranges, strides, indices
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip20(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = write_video(tmp_path_factory.mktemp("io") / "c.mp4", _clip(20), fps=10)
    return path, read_video(path)[0]


@pytest.mark.parametrize(
    "start,end,num,stride",
    [(0, None, None, 1), (3, 11, None, 1), (3, 11, None, 3), (2, None, 4, 5), (5, 6, 9, 1)],
)
def test_range_matches_slicing(
    clip20: tuple[Path, np.ndarray], start: int, end: int | None, num: int | None, stride: int
) -> None:
    path, full = clip20
    frames, meta = read_video(path, start, end, num, stride)
    want = list(range(20))[start:end:stride][:num]
    np.testing.assert_array_equal(frames, full[want])
    assert meta.frame_indices == tuple(want)
    np.testing.assert_allclose(meta.timestamps, np.array(want) / 10, atol=1e-6)
    if want[-1] < 19:  # stopped right after the last frame it needed
        assert meta.num_frames == want[-1] + 1 and not meta.complete
    else:
        assert meta.num_frames == 20 and meta.complete


def test_range_edges(clip20: tuple[Path, np.ndarray]) -> None:
    path, full = clip20
    frames, meta = read_video(path, start=15, end=100)  # like a slice: runs to the last frame
    np.testing.assert_array_equal(frames, full[15:])
    assert meta.complete and meta.num_frames == 20
    for empty in (read_video(path, 4, 4)[0], read_video(path, num_frames=0)[0]):
        assert empty.shape == (0, 32, 48, 3) and empty.dtype == np.uint8
    assert read_video(path, indices=[])[0].shape == (0, 32, 48, 3)
    with pytest.raises(VideoDecodeError, match=r"c\.mp4.*selects no frame"):
        read_video(path, start=20)
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_video(path, indices=[0, 20])
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_video(path, indices=[-1])


def test_argument_errors(clip20: tuple[Path, np.ndarray]) -> None:
    path, _ = clip20
    with pytest.raises(ValueError, match="indices"):
        read_video(path, 0, 5, indices=[1])
    with pytest.raises(ValueError, match="indices"):
        read_video(path, stride=2, indices=[1])
    with pytest.raises(ValueError, match="stride"):
        read_video(path, stride=0)
    with pytest.raises(ValueError, match="end"):
        read_video(path, 5, 2)
    with pytest.raises(ValueError, match="start"):
        read_video(path, -1)
    with pytest.raises(TypeError, match="seconds"):
        read_video(path, 1.5)
    with pytest.raises(ValueError, match="unit"):
        read_video(path, unit="minutes")  # type: ignore[arg-type]


def test_seconds_on_constant_rate(clip20: tuple[Path, np.ndarray]) -> None:
    path, full = clip20
    frames, meta = read_video(path, 0.5, 1.2, unit="seconds", stride=2)
    np.testing.assert_array_equal(frames, full[[5, 7, 9, 11]])
    assert meta.frame_indices == (5, 7, 9, 11)
    with pytest.raises(VideoDecodeError, match="selects no frame"):
        read_video(path, 2.5, unit="seconds")


# --------------------------------------------------------------------------------------------
# variable frame rate, rotation, pixel formats
# --------------------------------------------------------------------------------------------

_VFR_MS = [0, 40, 100, 110, 300, 310, 500, 700, 710, 900]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_seconds(tmp_path: Path, suffix: str) -> None:
    levels = [20 * i + 30 for i in range(10)]
    path = _encode(tmp_path / f"vfr{suffix}", _flat(levels), pts_ms=_VFR_MS)
    meta = probe_video(path)
    assert meta.num_frames == 10 and meta.complete
    np.testing.assert_allclose(meta.timestamps, np.array(_VFR_MS) / 1000, atol=1e-6)
    assert meta.duration >= 0.9

    frames, meta = read_video(path, 0.1, 0.5, unit="seconds")
    assert _ids(frames, levels) == [2, 3, 4, 5]
    assert meta.frame_indices == (2, 3, 4, 5)
    np.testing.assert_allclose(meta.timestamps, [0.1, 0.11, 0.3, 0.31], atol=1e-6)
    by_index, _ = read_video(path, 2, 6)
    np.testing.assert_array_equal(frames, by_index)

    frames, meta = read_video(path, 0.1, 0.5, stride=2, unit="seconds")
    assert meta.frame_indices == (2, 4)
    frames, meta = read_video(path, start=0.3, num_frames=3, unit="seconds")
    assert meta.frame_indices == (4, 5, 6) and _ids(frames, levels) == [4, 5, 6]
    frames, meta = read_video(path, 0.705, 60.0, unit="seconds")
    assert meta.frame_indices == (8, 9) and meta.complete
    with pytest.raises(VideoDecodeError, match="selects no frame"):
        read_video(path, 0.95, unit="seconds")


def _bright_centre(frame: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(frame.mean(-1) > 128)
    return ys.mean() / frame.shape[0], xs.mean() / frame.shape[1]


@pytest.mark.parametrize(
    "angle,where",
    [(90, (1, 0)), (-90, (0, 1)), (180, (1, 1))],  # (bottom?, right?) of the top-left block
)
def test_rotation_is_applied(tmp_path: Path, angle: int, where: tuple[int, int]) -> None:
    clip = np.zeros((3, 16, 32, 3), np.uint8)
    clip[:, :6, :10] = 255  # a block in the top-left corner
    path = _encode(tmp_path / "rot.mp4", clip, rotation=angle)

    raw, raw_meta = read_video(path, apply_rotation=False)
    assert raw.shape == (3, 16, 32, 3) and raw_meta.rotation == angle
    frames, meta = read_video(path)
    assert meta.rotation == angle and meta.rotation_applied
    np.testing.assert_array_equal(frames, np.rot90(raw, angle // 90, axes=(1, 2)))
    assert frames.shape[1:3] == ((16, 32) if angle == 180 else (32, 16))
    y, x = _bright_centre(frames[0])
    assert (int(y > 0.5), int(x > 0.5)) == where
    probed = probe_video(path)
    assert (probed.height, probed.width) == frames.shape[1:3] and probed.rotation == angle
    if angle == 90:  # OpenCV's FFmpeg backend turns frames upright by itself: same picture
        cap = cv2.VideoCapture(str(path))
        ok, bgr = cap.read()
        cap.release()
        if ok:
            assert bgr.shape == frames.shape[1:]
            assert np.abs(bgr[..., ::-1].astype(int) - frames[0]).mean() < 4


def test_rotate_metadata_tag_is_not_a_display_matrix(tmp_path: Path) -> None:
    """FFmpeg 8 muxers ignore ``stream.metadata["rotate"]``; only the display matrix counts."""
    path = tmp_path / "tag.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 16, "yuv420p"
        stream.metadata["rotate"] = "90"
        for packet in stream.encode(av.VideoFrame.from_ndarray(_clip(1, 16, 32)[0])):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    frames, meta = read_video(path)
    assert meta.rotation == 0 and frames.shape == (1, 16, 32, 3)


@pytest.mark.parametrize(
    "codec,pix_fmt,suffix,tol",
    [
        ("ffv1", "gray", ".mkv", 0),
        ("ffv1", "yuv444p", ".mkv", 4),
        ("ffv1", "yuv420p10le", ".mkv", 16),
        ("ffv1", "bgra", ".mkv", 0),
        ("png", "rgba", ".mov", 0),
        ("png", "gray16be", ".mov", 2),
        ("mjpeg", "yuvj422p", ".avi", 24),
    ],
)
def test_pixel_formats_and_odd_sizes(
    tmp_path: Path, codec: str, pix_fmt: str, suffix: str, tol: int
) -> None:
    h, w = 15, 21
    yy, xx = np.mgrid[0:h, 0:w]
    if pix_fmt.startswith("gray"):
        src = ((xx * 7 + yy * 5) % 256).astype(np.uint8)
        clip = np.stack([src, src])
        want = np.repeat(clip[..., None], 3, -1)
        path = _encode(
            tmp_path / f"p{suffix}", clip, codec=codec, pix_fmt=pix_fmt, src_format="gray"
        )
    else:
        img = np.stack([(xx * 12) % 256, (yy * 17) % 256, np.full_like(xx, 90)], -1)
        want = np.stack([img, img[::-1]]).astype(np.uint8)
        path = _encode(tmp_path / f"p{suffix}", want, codec=codec, pix_fmt=pix_fmt)
    frames, meta = read_video(path)
    assert frames.shape == (2, h, w, 3) and frames.dtype == np.uint8
    assert meta.pix_fmt == pix_fmt and (meta.height, meta.width) == (h, w)
    assert np.abs(frames.astype(int) - want).max() <= tol
    if pix_fmt.startswith("gray"):
        assert (frames[..., 0] == frames[..., 2]).all()


# --------------------------------------------------------------------------------------------
# bad files
# --------------------------------------------------------------------------------------------


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(VideoDecodeError, match=r"missing\.mp4: no such file"):
        probe_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        read_video(tmp_path / "empty.mp4")
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4: file is empty"):
        probe_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        probe_video(tmp_path / "junk.mp4")
    path = write_video(tmp_path / "short.mp4", _clip(4))
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_video(path, indices=[10])


@pytest.mark.parametrize("name,codec", [("a.wav", "pcm_s16le"), ("a.mka", "aac")])
def test_audio_only_file(tmp_path: Path, name: str, codec: str) -> None:
    path = tmp_path / name
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8000)
        stream.layout = "mono"
        fmt, dtype = ("s16", np.int16) if codec.startswith("pcm") else ("fltp", np.float32)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype), format=fmt, layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    for call in (read_video, probe_video):
        with pytest.raises(VideoDecodeError, match=rf"{name}: no video stream \(streams: audio\)"):
            call(path)


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    cut = path.with_name(f"cut_{path.name}")
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.mark.parametrize("suffix,codec", [(".avi", "mpeg4"), (".mkv", "h264"), (".avi", "mjpeg")])
def test_truncated_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, suffix: str, codec: str
) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (20, 32, 48, 3), dtype=np.uint8)
    full = write_video(tmp_path / f"v{suffix}", noise, fps=10, codec=codec)
    whole, _ = read_video(full)
    cut = _cut_in_half(full)
    for call in (read_video, probe_video):
        with pytest.raises(VideoDecodeError, match=rf"cut_v\{suffix}: .*(truncated|corrupt)") as e:
            call(cut)
        assert "at frame" in str(e.value) and "allow_partial" in str(e.value)
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        frames, meta = read_video(cut, allow_partial=True)
    assert 0 < len(frames) < 20 and not meta.complete and meta.num_frames == len(frames)
    np.testing.assert_array_equal(frames, whole[: len(frames)])
    assert any("cut_v" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert probe_video(cut, allow_partial=True).num_frames == len(frames)
    # the frames before the break are readable without allow_partial
    np.testing.assert_array_equal(read_video(cut, 0, 1)[0], whole[:1])


def test_truncated_mp4(tmp_path: Path) -> None:
    """Index at the end (default mp4): cannot open; index first (faststart): breaks mid-stream."""
    cut = _cut_in_half(write_video(tmp_path / "v.mp4", _clip(20), fps=10))
    with pytest.raises(VideoDecodeError, match=r"cut_v\.mp4: cannot open"):
        read_video(cut, allow_partial=True)
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (20, 32, 48, 3), dtype=np.uint8)
    fast = _encode(tmp_path / "f.mp4", noisy, container_options={"movflags": "faststart"})
    assert probe_video(fast).num_frames == 20
    cut = _cut_in_half(fast)
    with pytest.raises(VideoDecodeError, match=r"cut_f\.mp4: decoding failed at frame \d+"):
        read_video(cut)
    frames, meta = read_video(cut, allow_partial=True)
    assert 0 < len(frames) < 20 and not meta.complete


def test_corrupt_middle_terminates(tmp_path: Path) -> None:
    """Junk in the middle of a stream: a clean error or concealed frames, never a hang."""
    path = write_video(tmp_path / "v.mkv", _clip(20), fps=10)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 400] = np.random.default_rng(1).integers(0, 256, 400, np.uint8).tobytes()
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    try:
        frames, meta = read_video(bad)
    except VideoDecodeError as err:
        assert "bad.mkv" in str(err)
    else:
        assert 0 < len(frames) <= 20 and meta.num_frames == len(frames)


# --------------------------------------------------------------------------------------------
# frame folders
# --------------------------------------------------------------------------------------------


def _frame_folder(root: Path, n: int = 12, ext: str = ".png", gray: bool = False) -> list[int]:
    root.mkdir(parents=True, exist_ok=True)
    levels = [10 + 20 * i for i in range(n)]
    for i, v in enumerate(levels):
        img = np.full((9, 13) if gray else (9, 13, 3), v, np.uint8)
        if not gray:
            img[..., 0] = 255 - v  # blue channel (OpenCV writes BGR)
        assert cv2.imwrite(str(root / f"img{i + 1}{ext}"), img)
    (root / "notes.txt").write_text("not a frame")
    return levels


def test_frame_folder_reads_like_a_video(tmp_path: Path) -> None:
    levels = _frame_folder(tmp_path / "cam0")
    names = [p.name for p in frame_files(tmp_path / "cam0")]
    assert names[:3] == ["img1.png", "img2.png", "img3.png"] and names[-1] == "img12.png"
    frames, meta = read_video(tmp_path / "cam0")
    assert frames.shape == (12, 9, 13, 3) and meta.num_frames == 12 and meta.complete
    assert [int(f[0, 0, 1]) for f in frames] == levels  # natural order: img2 before img10
    assert (frames[..., 2] == 255 - frames[..., 1]).all()  # RGB, not BGR
    assert meta.fps == 0.0 and meta.timestamps == () and meta.codec == "png"
    sub, sub_meta = read_video(tmp_path / "cam0", 2, 11, 3, 4)
    np.testing.assert_array_equal(sub, frames[[2, 6, 10]])
    assert sub_meta.frame_indices == (2, 6, 10)
    np.testing.assert_array_equal(
        read_video(tmp_path / "cam0", indices=[11, 0, 11])[0], frames[[11, 0, 11]]
    )
    timed, timed_meta = read_video(tmp_path / "cam0", 0.5, 1.0, unit="seconds", fps=10)
    np.testing.assert_array_equal(timed, frames[5:10])
    np.testing.assert_allclose(timed_meta.timestamps, np.arange(5, 10) / 10)
    with pytest.raises(ValueError, match="fps"):
        read_video(tmp_path / "cam0", 0.5, 1.0, unit="seconds")
    probed = probe_video(tmp_path / "cam0", fps=25)
    assert (probed.num_frames, probed.height, probed.width, probed.fps) == (12, 9, 13, 25.0)
    assert probed.duration == pytest.approx(12 / 25) and len(probed.timestamps) == 12
    assert probed.pix_fmt == "bgr24"


def test_frame_folder_gray_jpeg(tmp_path: Path) -> None:
    levels = _frame_folder(tmp_path / "g", n=3, ext=".jpg", gray=True)
    frames, meta = read_video(tmp_path / "g")
    assert frames.shape == (3, 9, 13, 3) and meta.pix_fmt == "gray" and meta.codec == "jpeg"
    assert np.abs(frames.mean(axis=(1, 2, 3)) - levels).max() < 2


def test_frame_folder_bad_frames(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "f"
    _frame_folder(folder, n=12)
    (folder / "img12.png").write_bytes(b"broken")
    frames, _ = read_video(folder, 0, 3)  # only the frames needed are read
    assert len(frames) == 3
    with pytest.raises(VideoDecodeError, match=r"img12\.png: cannot read image"):
        read_video(folder)
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        frames, _ = read_video(folder, allow_partial=True)
    assert len(frames) == 11 and any("img12.png" in r.getMessage() for r in caplog.records)
    cv2.imwrite(str(folder / "img12.png"), np.zeros((5, 5, 3), np.uint8))
    with pytest.raises(VideoDecodeError, match=r"img12\.png: frame 11 is 5x5"):
        read_video(folder, start=10)
    (tmp_path / "none").mkdir()
    with pytest.raises(VideoDecodeError, match="none: no image frames"):
        probe_video(tmp_path / "none")
    cv2.imwrite(str(folder / "img13.jpg"), np.zeros((9, 13, 3), np.uint8))
    with pytest.raises(VideoDecodeError, match="mixed image types"):
        read_video(folder)


# --------------------------------------------------------------------------------------------
# real clips
# --------------------------------------------------------------------------------------------


def _manifest(real_clips: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((real_clips / "manifest.csv").open()))


def test_real_clips_frame_counts(real_clips: Path) -> None:
    """Matroska headers say 0 frames: counts must come from decoding (manifest's frames_decoded)."""
    rows = _manifest(real_clips)
    mkv = [r for r in rows if r["path"].endswith(".mkv")][:2]
    avi = [r for r in rows if r["path"].endswith("tests_data_test.avi")]
    for row in mkv + avi:
        frames, meta = read_video(real_clips / row["path"])
        assert meta.num_frames == int(row["frames_decoded"]) == len(frames)
        assert (meta.width, meta.height) == (int(row["width"]), int(row["height"]))


def test_read_every_real_clip(real_clips: Path) -> None:
    """The acceptance check: every real clip decodes to RGB with the manifest's frame count."""
    for row in _manifest(real_clips):
        frames, meta = read_video(real_clips / row["path"])
        h, w = int(row["height"]), int(row["width"])
        assert frames.shape == (int(row["frames_decoded"]), h, w, 3), row["path"]
        assert meta.num_frames == len(frames) and meta.complete, row["path"]
        assert frames.dtype == np.uint8 and 5 < float(frames[0].mean()) < 250, row["path"]


def test_probe_every_real_clip(real_clips: Path) -> None:
    rows = _manifest(real_clips)
    assert len(rows) >= 30
    for row in rows:
        meta = probe_video(real_clips / row["path"])
        assert meta.num_frames == int(row["frames_decoded"]), row["path"]
        assert (meta.width, meta.height) == (int(row["width"]), int(row["height"])), row["path"]
        assert meta.complete and meta.header_frames == int(row["frames_header"]), row["path"]
        assert meta.fps == pytest.approx(float(row["fps"]), rel=1e-3), row["path"]
        stamps = np.array(meta.timestamps)
        assert len(stamps) == meta.num_frames and stamps[0] == 0.0, row["path"]
        # presentation order even where the container stores decode-order pts (h264 in AVI)
        assert (np.diff(stamps) > 0).all(), row["path"]
        assert abs(meta.duration - float(row["duration_s"])) < 2.5 / meta.fps, row["path"]


@pytest.mark.parametrize(
    "name",
    [
        "mmaction2/tests_data_test.avi",
        "intel-sample-videos/asl_gestures/again.mkv",
        "mmaction2/tests_data_rawvideo_dataset_part_0.mp4",
    ],
)
def test_real_clip_ranges(real_clips: Path, name: str) -> None:
    path = real_clips / name
    full, meta = read_video(path)
    n = len(full)
    stamps = np.array(meta.timestamps)
    for start, end, num, stride in [(0, 8, None, 1), (5, None, 6, 3), (n // 2, n - 1, None, 4)]:
        frames, sub = read_video(path, start, end, num, stride)
        want = list(range(n))[start:end:stride][:num]
        np.testing.assert_array_equal(frames, full[want], err_msg=f"{name} {start}:{end}:{stride}")
        np.testing.assert_allclose(sub.timestamps, stamps[want])
        # decoding stopped at the last frame needed (B-frames in AVI: up to _REORDER_WINDOW
        # frames later, to put the decode-order timestamps back in presentation order)
        extra = _REORDER_WINDOW if name.endswith(".avi") else 0
        assert want[-1] < sub.num_frames <= want[-1] + 1 + extra
    frames, sub = read_video(path, 0.5, 0.9, unit="seconds")
    inside = np.nonzero((stamps >= 0.5) & (stamps < 0.9))[0]
    assert len(inside) > 0 and sub.frame_indices == tuple(inside)
    np.testing.assert_array_equal(frames, full[inside])
    quick = probe_video(path, count_frames=False)
    assert not quick.complete and (quick.width, quick.height) == (meta.width, meta.height)
    assert abs(quick.num_frames - n) <= 1  # the header's estimate
