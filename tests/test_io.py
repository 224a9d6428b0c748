from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lowres_har.data.io import VideoDecodeError, read_video, write_video


def _clip(t: int = 10, h: int = 32, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [
        np.stack([(xx * 5 + 20 * i) % 256, (yy * 7) % 256, np.full_like(xx, 128)], -1)
        for i in range(t)
    ]
    return np.stack(frames).astype(np.uint8)


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


def test_odd_size_is_padded(tmp_path: Path) -> None:
    frames, _ = read_video(write_video(tmp_path / "odd.mp4", _clip(3, 15, 21)))
    assert frames.shape == (3, 16, 22, 3)


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoDecodeError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    path = write_video(tmp_path / "short.mp4", _clip(4))
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_video(path, indices=[10])


def test_real_clips_frame_counts(real_clips: Path) -> None:
    """Matroska headers say 0 frames: counts must come from decoding (manifest's frames_decoded)."""
    rows = list(csv.DictReader((real_clips / "manifest.csv").open()))
    mkv = [r for r in rows if r["path"].endswith(".mkv")][:2]
    avi = [r for r in rows if r["path"].endswith("tests_data_test.avi")]
    for row in mkv + avi:
        frames, meta = read_video(real_clips / row["path"])
        assert meta.num_frames == int(row["frames_decoded"]) == len(frames)
        assert (meta.width, meta.height) == (int(row["width"]), int(row["height"]))
