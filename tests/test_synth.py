"""Tests for the SynthActions renderer and dataset generator (lowres_har.data.synth)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lowres_har.data import synth
from lowres_har.data.io import read_video
from lowres_har.data.synth import (
    SYNTH_CLASSES,
    SYNTH_VERSION,
    generate_synth_actions,
    render_clip,
)

TINY: dict[str, Any] = {"videos_per_class": 3, "num_frames": 8, "size": 64, "fps": 8, "seed": 3}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth_a")
    return generate_synth_actions(root, workers=0, progress=False, **TINY)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_class_list() -> None:
    assert len(SYNTH_CLASSES) >= 12
    assert len(set(SYNTH_CLASSES)) == len(SYNTH_CLASSES)
    assert SYNTH_CLASSES[:3] == ("walk", "run", "jump")
    assert SYNTH_CLASSES[-1] == "turn"
    assert isinstance(SYNTH_VERSION, int)


@pytest.mark.parametrize("label", range(len(SYNTH_CLASSES)))
def test_render_every_class(label: int) -> None:
    clip = render_clip(label, np.random.default_rng(label), num_frames=16, size=112)
    assert clip.dtype == np.uint8
    assert clip.shape == (16, 112, 112, 3)
    diff = np.abs(np.diff(clip.astype(np.int16), axis=0)).mean()
    assert diff > 0.5  # frames change over time (not only by rounding)
    assert clip.std() > 10  # not a flat image


def _pose(label: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free joint trajectories ``(T, J, 3)`` (body frame, figure heights) and yaw progress."""
    n, fps = 32, 16.0
    t = np.arange(n) / fps
    motion = synth._class_motion(label, t, np.random.default_rng(seed), n / fps)
    body = synth._random_body(np.random.default_rng(1000))
    return synth._skeleton(motion, body), motion.yaw


def test_class_motions_are_distinct() -> None:
    trajs = [_pose(i)[0] for i in range(len(SYNTH_CLASSES))]
    for i in range(len(trajs)):
        for j in range(i + 1, len(trajs)):
            gap = np.abs(trajs[i] - trajs[j]).mean()
            assert gap > 0.02, (SYNTH_CLASSES[i], SYNTH_CLASSES[j], gap)
    for i, tr in enumerate(trajs):
        if SYNTH_CLASSES[i] != "turn":  # turn moves mostly through yaw
            assert np.abs(tr - tr[:1]).max() > 0.1, SYNTH_CLASSES[i]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_motion_semantics(seed: int) -> None:
    c = {name: i for i, name in enumerate(SYNTH_CLASSES)}
    pose = {name: _pose(i, seed)[0] for name, i in c.items()}
    pelvis_y = {k: v[:, synth._PELVIS, 1] for k, v in pose.items()}
    stand = pelvis_y["clap"].mean()  # clapping keeps the legs straight
    # forward travel of the feet (both must move: kicking moves only one)
    travel = {k: min(np.ptp(v[:, a, 2]) for a in synth._ANKLE) for k, v in pose.items()}
    assert travel["run"] > travel["walk"] > 0.3
    assert max(travel[k] for k in c if k not in ("walk", "run")) < 0.2
    # jump leaves the ground
    feet = pose["jump"][:, [synth._ANKLE[0], synth._ANKLE[1]], 1].min(axis=1)
    assert feet.max() > 0.1
    # squatting and sitting lower the hips; sit_down stays down at the end
    assert pelvis_y["squat"].min() < 0.8 * stand
    assert pelvis_y["sit_down"][-1] < 0.8 * stand < pelvis_y["sit_down"][0]
    # bending brings the head down and forward
    assert pose["bend"][:, synth._HEAD, 1].min() < 0.75 * pose["clap"][:, synth._HEAD, 1].min()
    # waving: hands raised above the shoulders (one or both)
    for name, hands in (("wave_one_hand", 1), ("wave_both_hands", 2)):
        neck_y = pose[name][:, synth._NECK, 1]
        up = [(pose[name][:, w, 1] > neck_y + 0.05).mean() > 0.8 for w in synth._WRIST]
        assert sum(up) == hands, name
    # clapping: the hands meet and part
    gap = np.linalg.norm(
        pose["clap"][:, synth._WRIST[0]] - pose["clap"][:, synth._WRIST[1]], axis=1
    )
    assert gap.min() < 0.06 < 0.12 < gap.max()
    # punch reaches forward with a hand, kick with a foot
    assert pose["punch"][:, list(synth._WRIST), 2].max() > 0.3
    assert pose["kick"][:, list(synth._ANKLE), 2].max() > 0.3
    assert pose["clap"][:, list(synth._ANKLE), 2].max() < 0.1
    # turn: the facing direction changes from start to end
    _, progress = _pose(c["turn"], seed)
    assert progress[0] < 0.1 and progress[-1] > 0.9


def test_render_deterministic_and_seed_dependent() -> None:
    a = render_clip(4, np.random.default_rng(123), num_frames=8, size=64)
    b = render_clip(4, np.random.default_rng(123), num_frames=8, size=64)
    c = render_clip(4, np.random.default_rng(124), num_frames=8, size=64)
    assert a.shape == (8, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_render_rejects_bad_label() -> None:
    with pytest.raises(ValueError):
        render_clip(len(SYNTH_CLASSES), np.random.default_rng(0))
    with pytest.raises(ValueError):
        render_clip(-1, np.random.default_rng(0))


def test_layout_and_splits(tiny_root: Path) -> None:
    meta = json.loads((tiny_root / "meta.json").read_text())
    assert meta["version"] == SYNTH_VERSION
    assert meta["classes"] == list(SYNTH_CLASSES)
    assert meta["params"]["videos_per_class"] == 3
    assert (tiny_root / "classes.txt").read_text().splitlines() == list(SYNTH_CLASSES)

    seen: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        lines = (tiny_root / f"{split}.txt").read_text().splitlines()
        assert meta["counts"][split] == len(lines)
        entries = set()
        per_class = [0] * len(SYNTH_CLASSES)
        for line in lines:
            rel, lab = line.split(" ")
            label = int(lab)
            assert 0 <= label < len(SYNTH_CLASSES)
            name = SYNTH_CLASSES[label]
            assert rel.startswith(f"videos/{name}/{name}_") and rel.endswith(".mp4")
            assert (tiny_root / rel).is_file()
            entries.add(rel)
            per_class[label] += 1
        assert len(entries) == len(lines)
        # stratified: 3 videos per class with (0.6, 0.2, 0.2) -> one per split for every class
        assert per_class == [1] * len(SYNTH_CLASSES)
        seen[split] = entries
    assert not seen["train"] & seen["val"]
    assert not seen["train"] & seen["test"]
    assert not seen["val"] & seen["test"]
    all_listed = seen["train"] | seen["val"] | seen["test"]
    on_disk = {str(p.relative_to(tiny_root)) for p in (tiny_root / "videos").rglob("*.mp4")}
    assert all_listed == on_disk
    assert len(on_disk) == 3 * len(SYNTH_CLASSES)


def test_default_split_counts(tmp_path: Path) -> None:
    root = generate_synth_actions(
        tmp_path, videos_per_class=10, num_frames=2, size=16, workers=0, progress=False
    )
    for split, expected in (("train", 6), ("val", 2), ("test", 2)):
        labels = [int(ln.split()[1]) for ln in (root / f"{split}.txt").read_text().splitlines()]
        assert np.bincount(labels, minlength=len(SYNTH_CLASSES)).tolist() == [expected] * len(
            SYNTH_CLASSES
        )


def test_decoded_video_shape(tiny_root: Path) -> None:
    rel = (tiny_root / "test.txt").read_text().splitlines()[0].split()[0]
    frames, meta = read_video(tiny_root / rel)
    assert frames.shape == (8, 64, 64, 3)
    assert meta.num_frames == 8
    assert meta.fps == pytest.approx(8.0)
    # the encoded video is close to the rendered clip (same rng -> same pixels)
    label = SYNTH_CLASSES.index(rel.split("/")[1])
    index = int(Path(rel).stem.rsplit("_", 1)[1])
    clip = render_clip(
        label,
        np.random.default_rng(np.random.SeedSequence([TINY["seed"], 0, label, index])),
        num_frames=8,
        size=64,
        fps=8,
    )
    assert np.abs(frames.astype(np.int16) - clip).mean() < 8  # H.264 at crf 18 on noisy frames


def test_byte_identical_regeneration(tiny_root: Path, tmp_path: Path) -> None:
    other = generate_synth_actions(tmp_path / "b", workers=0, progress=False, **TINY)
    a, b = _files(tiny_root), _files(other)
    assert sorted(a) == sorted(b)
    assert any(k.endswith(".mp4") for k in a)
    for key in a:
        assert a[key] == b[key], key


def test_different_seed_changes_videos(tiny_root: Path, tmp_path: Path) -> None:
    params: dict[str, Any] = dict(TINY, seed=TINY["seed"] + 1, videos_per_class=1)
    other = generate_synth_actions(tmp_path, workers=0, progress=False, **params)
    rel = "videos/walk/walk_0000.mp4"
    assert (other / rel).read_bytes() != (tiny_root / rel).read_bytes()


def test_cache_reuse_and_mismatch(tmp_path: Path) -> None:
    params: dict[str, Any] = dict(TINY, videos_per_class=1, num_frames=4)
    root = generate_synth_actions(tmp_path, workers=0, progress=False, **params)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    time.sleep(0.02)
    again = generate_synth_actions(tmp_path, workers=0, progress=False, **params)
    assert again == root
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert after == before  # nothing rewritten

    with pytest.raises(ValueError, match="num_frames") as info:
        generate_synth_actions(tmp_path, workers=0, progress=False, **dict(params, num_frames=5))
    assert str(tmp_path) in str(info.value)
    assert "overwrite=True" in str(info.value)

    # overwrite=True replaces the dataset
    (root / "videos" / "walk" / "stale.mp4").write_bytes(b"x")
    generate_synth_actions(
        tmp_path, workers=0, progress=False, overwrite=True, **dict(params, num_frames=5)
    )
    meta = json.loads((root / "meta.json").read_text())
    assert meta["params"]["num_frames"] == 5
    assert not (root / "videos" / "walk" / "stale.mp4").exists()
    frames, _ = read_video(root / "videos" / "walk" / "walk_0000.mp4")
    assert frames.shape[0] == 5


def test_partial_root_is_regenerated(tmp_path: Path) -> None:
    params: dict[str, Any] = dict(TINY, videos_per_class=1, num_frames=4)
    root = generate_synth_actions(tmp_path, workers=0, progress=False, **params)
    video = root / "videos" / "clap" / "clap_0000.mp4"
    good = video.read_bytes()
    (root / "meta.json").unlink()
    video.write_bytes(b"truncated")
    generate_synth_actions(tmp_path, workers=0, progress=False, **params)
    assert (root / "meta.json").is_file()
    assert video.read_bytes() == good
    assert not list(root.rglob("*.tmp*"))


def test_workers_do_not_change_output(tiny_root: Path, tmp_path: Path) -> None:
    params: dict[str, Any] = dict(TINY, videos_per_class=1)
    par = generate_synth_actions(tmp_path, workers=2, progress=False, **params)
    rel = "videos/kick/kick_0000.mp4"
    assert (par / rel).read_bytes() == (tiny_root / rel).read_bytes()


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_synth_actions(tmp_path, split=(0.5, 0.2, 0.2), workers=0, progress=False)
    with pytest.raises(ValueError):
        generate_synth_actions(tmp_path, videos_per_class=0, workers=0, progress=False)
