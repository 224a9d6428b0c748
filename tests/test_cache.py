"""Preprocessing cache: exact content, resume after a kill, shards, failures, DataModule reads."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lowres_har.cli import main
from lowres_har.data import SynthActionsDataModule
from lowres_har.data.cache import VideoCache, build_cache, parse_shard
from lowres_har.data.io import VideoDecodeError, read_video, write_video
from lowres_har.data.views import ViewDegrader, parse_views

VIEWS = {"video": {"size": [12, 16], "upsample_to": [32, 32]}, "video_hr": {"size": [24, 24]}}
TINY = dict(videos_per_class=3, video_frames=8, video_size=32, workers=0)


def _dm(data_home: Path, **kwargs: object) -> SynthActionsDataModule:
    return SynthActionsDataModule(
        root=str(data_home / "synth_actions"), views=VIEWS, num_workers=0, **TINY, **kwargs
    )


def _entries(dm: SynthActionsDataModule) -> list[tuple[str, None]]:
    return [(str(e[0]), None) for e in dm.all_videos()]


def _build(dm: SynthActionsDataModule, out: Path, **kwargs: object) -> object:
    deg = ViewDegrader(dm.views)
    return build_cache(_entries(dm), deg, deg.specs(), deg.shapes, out, progress=False, **kwargs)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.usefixtures("tiny_synth")
def test_cache_holds_exactly_the_degraded_views(data_home: Path, tmp_path: Path) -> None:
    dm = _dm(data_home)
    report = _build(dm, tmp_path / "c", chunk_size=5)
    assert report.complete and report.chunks_total == 8 and not report.failures  # 36 videos
    cache = VideoCache(tmp_path / "c")
    deg = ViewDegrader(parse_views(VIEWS))
    for path, _ in _entries(dm)[::7]:
        frames, _ = read_video(path)
        expected = deg(frames)
        got = cache.frames(cache.key(path))
        assert set(got) == {"video", "video_hr"}
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])
        idx = np.array([5, 0, 5])
        np.testing.assert_array_equal(
            cache.frames(cache.key(path), ["video"], idx)["video"], expected["video"][idx]
        )
        assert cache.num_frames(cache.key(path)) == 8 and cache.fps(cache.key(path)) == 16


@pytest.mark.usefixtures("tiny_synth")
def test_sharded_and_parallel_runs_equal_a_single_run(data_home: Path, tmp_path: Path) -> None:
    dm = _dm(data_home)
    _build(dm, tmp_path / "one", chunk_size=4)
    first = _build(dm, tmp_path / "split", chunk_size=4, shard=(1, 3))
    assert not first.complete and first.chunks_written == 3  # chunks 1, 4, 7 of 9
    with pytest.raises(FileNotFoundError, match="incomplete"):
        VideoCache(tmp_path / "split")
    _build(dm, tmp_path / "split", chunk_size=4, shard=(0, 3), workers=2)
    last = _build(dm, tmp_path / "split", chunk_size=4, shard=(2, 3))
    assert last.complete
    assert _digest(tmp_path / "split") == _digest(tmp_path / "one")
    again = _build(dm, tmp_path / "one", chunk_size=4)
    assert again.chunks_written == 0 and again.chunks_done_before == 9


@pytest.mark.usefixtures("tiny_synth")
def test_killed_run_resumes_to_identical_output(data_home: Path, tmp_path: Path) -> None:
    """SIGKILL a preprocessing process half-way, rerun, compare with an uninterrupted run."""
    dm = _dm(data_home)
    _build(dm, tmp_path / "ref", chunk_size=2)
    script = textwrap.dedent(
        f"""
        import time
        from lowres_har.data.cache import build_cache
        from lowres_har.data.views import ViewDegrader, parse_views

        class Slow(ViewDegrader):
            def __call__(self, clip):
                time.sleep(0.05)
                return super().__call__(clip)

        deg = Slow(parse_views({VIEWS!r}))
        entries = {_entries(dm)!r}
        build_cache(entries, deg, deg.specs(), deg.shapes, {str(tmp_path / "killed")!r},
                    chunk_size=2, progress=False)
        """
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    chunks = tmp_path / "killed" / "chunks"
    deadline = time.monotonic() + 120
    while len(list(chunks.glob("*.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(chunks.glob("*.json")))
    assert 4 <= done < 18, f"kill landed after {done} of 18 chunks"
    assert not (tmp_path / "killed" / "index.json").exists()
    report = _build(dm, tmp_path / "killed", chunk_size=2)
    assert report.complete and report.chunks_done_before == done
    assert _digest(tmp_path / "killed") == _digest(tmp_path / "ref")


@pytest.mark.usefixtures("tiny_synth")
def test_corrupt_video_goes_to_the_report(data_home: Path, tmp_path: Path) -> None:
    src = _dm(data_home).dataset_dir
    # a private copy of the dataset with one truncated and one junk file
    import shutil

    copy = tmp_path / "synth"
    shutil.copytree(src, copy)
    dm = _dm(data_home)
    dm.dataset_dir = copy
    train = dm.split_videos("train")
    bad_a, bad_b = Path(train[0][0]), Path(train[1][0])
    bad_a.write_bytes(bad_a.read_bytes()[:200])
    bad_b.write_bytes(b"junk" * 50)
    report = _build(dm, tmp_path / "c", chunk_size=8, workers=2)
    assert report.complete and len(report.failures) == 2
    failed = json.loads((tmp_path / "c" / "report.json").read_text())["failed"]
    assert sorted(Path(k).name for k in failed) == sorted([bad_a.name, bad_b.name])
    assert all(failed[k] for k in failed)  # each with its cause

    dm.cache_dir = str(tmp_path / "c")
    with pytest.raises(VideoDecodeError, match="2 train videos failed in preprocessing"):
        dm.make_dataset("train")
    dm.on_error = "skip"
    assert len(dm.make_dataset("train")) == len(train) - 2


@pytest.mark.usefixtures("tiny_synth")
def test_datamodule_reads_the_cache(data_home: Path, tmp_path: Path) -> None:
    dm = _dm(data_home)
    _build(dm, tmp_path / "c", chunk_size=16)
    cached = _dm(data_home, cache_dir=str(tmp_path / "c"), eval_clips=2)
    plain = _dm(data_home, eval_clips=2)
    for d in (cached, plain):
        d.setup("test")
    assert len(cached.test_dataset) == len(plain.test_dataset) == 24
    for i in (0, 5, 23):
        a, b = cached.test_dataset[i], plain.test_dataset[i]
        assert a["video"].shape == (3, 16, 32, 32) and a["video_hr"].shape == (3, 16, 24, 24)
        # eval has no randomness: cache and decode give the same tensors
        torch.testing.assert_close(a["video"], b["video"])
        assert int(a["label"]) == int(b["label"]) and int(a["video_index"]) == i // 2
    cached.setup("fit")
    torch.manual_seed(0)
    item = cached.train_dataset[3]
    assert item["video"].shape == (3, 16, 32, 32) and torch.isfinite(item["video"]).all()

    other = SynthActionsDataModule(
        root=str(data_home / "synth_actions"),
        views={"video": {"size": [16, 16]}},
        cache_dir=str(tmp_path / "c"),
        **TINY,
    )
    with pytest.raises(ValueError, match="rebuild it"):
        other.setup("test")


@pytest.mark.usefixtures("tiny_synth")
def test_other_config_into_same_folder_is_refused(data_home: Path, tmp_path: Path) -> None:
    dm = _dm(data_home)
    _build(dm, tmp_path / "c", chunk_size=16)
    with pytest.raises(ValueError, match="chunk_size"):
        _build(dm, tmp_path / "c", chunk_size=8)


def test_parse_shard() -> None:
    assert parse_shard("2/8") == (2, 8)
    for bad in ("8/8", "a/b", "3"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_missing_or_incomplete_cache_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="lowres-har preprocess"):
        VideoCache(tmp_path)


def test_frame_range_entries(tmp_path: Path) -> None:
    clip = (np.arange(20, dtype=np.uint8)[:, None, None, None] * 10).repeat(24, 1).repeat(32, 2)
    path = write_video(tmp_path / "v" / "long.avi", clip.repeat(3, 3), fps=10, codec="mjpeg")
    deg = ViewDegrader(parse_views({"video": {"size": [6, 8]}}))
    build_cache(
        [(str(path), (2, 7)), (str(path), (10, 20)), (str(path), None)],
        deg,
        deg.specs(),
        deg.shapes,
        tmp_path / "c",
        progress=False,
    )
    cache = VideoCache(tmp_path / "c")
    full = cache.frames(cache.key(path))["video"]
    assert len(full) == 20
    np.testing.assert_array_equal(cache.frames(cache.key(path, (2, 7)))["video"], full[2:7])
    np.testing.assert_array_equal(cache.frames(cache.key(path, (10, 20)))["video"], full[10:20])


@pytest.mark.usefixtures("tiny_synth")
def test_preprocess_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "preprocess",
        "--config",
        "quickstart",
        "--out",
        str(tmp_path / "c"),
        "--workers",
        "0",
        "--no-progress",
        *[f"--data.init_args.{k}={v}" for k, v in TINY.items()],
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "36 videos" in out and "cache_dir=" in out
    assert main(args) == 0
    assert "0 chunks (0 videos), 2 already done" in capsys.readouterr().out
    assert main([*args[:5], "--shard", "5/2"]) == 2


@pytest.mark.usefixtures("tiny_synth")
def test_source_frame_options_are_refused_with_a_cache(data_home: Path, tmp_path: Path) -> None:
    dm = _dm(data_home)
    _build(dm, tmp_path / "c", chunk_size=16)
    bad = _dm(data_home, cache_dir=str(tmp_path / "c"), crop_size=(24, 24))
    with pytest.raises(ValueError, match="crop_size and short_side_scale"):
        bad.setup("fit")
