"""IXMAS: truth parsing, action instances per camera, actor splits and protocols, layout errors,
missing frame folders and a one-epoch CLI fit on the tiny fixture from
``tests/data/ixmas/make_fixture.py``."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import fit_args

from lowres_har.cli import main
from lowres_har.data.datasets.ixmas import (
    IXMAS_ACTIONS,
    IXMASDataModule,
    find_takes,
    read_truth,
    truth_runs,
)

PROTOCOL_11 = [
    "check_watch",
    "cross_arms",
    "scratch_head",
    "sit_down",
    "get_up",
    "turn_around",
    "walk",
    "wave",
    "punch",
    "kick",
    "pick_up",
]


@pytest.fixture(scope="module")
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("ixmas")


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    out = tmp_path / "IXMAS"
    shutil.copytree(root, out)
    return out


def _runs(root: Path, take: str) -> list[tuple[int, int, int]]:
    return truth_runs(read_truth(root / f"{take}_truth.txt"))


def test_truth_runs() -> None:
    labels = [0, 0, 7, 7, 7, 0, 11, 11, 10, 10, 10, 0, 7]
    assert truth_runs(labels) == [(7, 2, 5), (11, 6, 8), (10, 8, 11), (7, 12, 13)]
    assert truth_runs([0, 0]) == []
    assert truth_runs([5]) == [(5, 0, 1)]


def test_read_truth_errors(tmp_path: Path) -> None:
    good = tmp_path / "a1_truth.txt"
    good.write_text("0\n3\r\n3\n\n\n")
    assert read_truth(good) == [0, 3, 3]
    bad = tmp_path / "b1_truth.txt"
    bad.write_text("0\n1\nwalk\n")
    with pytest.raises(ValueError, match=r"b1_truth.txt:3: expected one integer"):
        read_truth(bad)
    bad.write_text("0\n15\n")
    with pytest.raises(ValueError, match=r"b1_truth.txt:2: action id 15 outside 0..14"):
        read_truth(bad)
    bad.write_text("\n")
    with pytest.raises(ValueError, match="empty truth file"):
        read_truth(bad)


def test_takes_found(root: Path) -> None:
    takes = find_takes(root)
    assert [t.name for t in takes] == [
        "alba1",
        "alba2",
        "amel1",
        "hedlena1",
        "julien1",
        "nicolas1",
        "pao1",
    ]
    assert takes[1].actor == "alba" and takes[1].take == 2
    assert takes[1].frames_dir == root / "alba2_png"


def test_default_split_protocol_11(root: Path) -> None:
    dm = IXMASDataModule(str(root))
    assert dm.class_names == PROTOCOL_11 and dm.num_classes == 11
    assert dm.split_actors("train") == ["alba", "amel"]  # pao is not in the protocol
    assert dm.split_actors("val") == ["hedlena"]
    assert dm.split_actors("test") == ["julien", "nicolas"]
    for split, takes in (
        ("train", ["alba1", "alba2", "amel1"]),
        ("val", ["hedlena1"]),
        ("test", ["julien1", "nicolas1"]),
    ):
        entries = dm.split_videos(split)
        expected = []
        for take in takes:
            for action, start, end in _runs(root, take):
                if action == 11:  # point is not one of the 11 actions
                    continue
                for cam in range(5):
                    label = PROTOCOL_11.index(IXMAS_ACTIONS[action])
                    expected.append((str(root / f"{take}_png" / f"cam{cam}"), label, (start, end)))
        assert entries == expected
        assert len(entries) == len(takes) * 3 * 5  # walk, wave, kick × 5 cameras
    info = dm.instances("test")
    assert [(x.actor, x.camera) for x in info[:6]] == [("julien", c) for c in range(5)] + [
        ("julien", 0)
    ]


def test_protocol_all_keeps_point_and_every_actor(root: Path) -> None:
    dm = IXMASDataModule(str(root), protocol="all", cameras=[2], val_actors=["pao"])
    assert dm.num_classes == 14 and dm.class_names == list(IXMAS_ACTIONS[1:])
    val = dm.split_videos("val")
    assert {Path(e[0]).parent.name for e in val} == {"pao1_png"}
    labels = Counter(dm.class_names[e[1]] for e in val)  # type: ignore[index]
    assert labels == {"walk": 1, "wave": 1, "point": 1, "kick": 1}
    point = next(e for e in val if dm.class_names[e[1]] == "point")  # type: ignore[index]
    kick = next(e for e in val if dm.class_names[e[1]] == "kick")  # type: ignore[index]
    assert point[2][1] == kick[2][0]  # type: ignore[misc]  # kick starts right after point
    assert all(e[0].endswith("cam2") for e in val)


def test_leave_one_actor_out(root: Path) -> None:
    dm = IXMASDataModule(str(root), test_actors=["amel"], val_actors=[], cameras=[0, 4])
    assert dm.split_actors("val") == ["amel"]
    assert dm.split_videos("val") == dm.split_videos("test")
    assert dm.split_actors("train") == ["alba", "hedlena", "julien", "nicolas"]
    train = dm.split_videos("train")
    assert len(train) == 5 * 3 * 2  # 5 takes, 3 actions, 2 cameras
    assert {Path(e[0]).name for e in train} == {"cam0", "cam4"}


def test_argument_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="IXMAS root .*nowhere not found"):
        IXMASDataModule(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="cameras must be distinct"):
        IXMASDataModule(str(root), cameras=[0, 5])
    with pytest.raises(ValueError, match=r"both test_actors and val_actors: \['amel'\]"):
        IXMASDataModule(str(root), test_actors=["amel"], val_actors=["amel"])
    with pytest.raises(ValueError, match="protocol"):
        IXMASDataModule(str(root), protocol="13")
    dm = IXMASDataModule(str(root), test_actors=["pao"])  # excluded by protocol 11
    with pytest.raises(ValueError, match=r"test_actors: \['pao'\] not among .*available: \['alba'"):
        dm.split_videos("train")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no IXMAS truth files found"):
        IXMASDataModule(str(empty)).split_videos("train")


def test_truth_file_locations(copy: Path) -> None:
    (copy / "truth").mkdir()
    shutil.move(copy / "amel1_truth.txt", copy / "truth" / "amel1_truth.txt")
    shutil.move(copy / "alba2_truth.txt", copy / "alba2_png" / "alba2_truth.txt")
    takes = {t.name: t.truth for t in find_takes(copy)}
    assert takes["amel1"] == copy / "truth" / "amel1_truth.txt"
    assert takes["alba2"] == copy / "alba2_png" / "alba2_truth.txt"
    shutil.copy(copy / "truth" / "amel1_truth.txt", copy / "amel1_truth.txt")
    with pytest.raises(ValueError, match="two truth files for take amel1"):
        find_takes(copy)
    (copy / "amel1_truth.txt").unlink()
    (copy / "Alba-extra_truth.txt").write_text("0\n")
    with pytest.raises(ValueError, match="Alba-extra_truth.txt: truth file name must be"):
        find_takes(copy)


def test_missing_camera_folder_raise_or_skip(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.rmtree(copy / "julien1_png" / "cam3")
    with pytest.raises(FileNotFoundError, match=r"test \(julien, nicolas\): 3 of 30 videos"):
        IXMASDataModule(str(copy)).split_videos("test")
    dm = IXMASDataModule(str(copy), on_error="skip")
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        entries = dm.split_videos("test")
    assert "3 of 30 videos are missing" in caplog.text
    assert len(entries) == 27 and not any("julien1_png/cam3" in e[0] for e in entries)
    assert [x.camera for x in dm.instances("test")].count(3) == 3  # only nicolas's cam3 left


def test_truth_longer_than_frames(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    last_run = _runs(copy, "hedlena1")[-1]
    folder = copy / "hedlena1_png" / "cam1"
    frames = sorted(folder.glob("*.png"))
    for path in frames[last_run[2] - 1 :]:  # cut the last frame of the final action
        path.unlink()
    with pytest.raises(ValueError, match=r"1 of 15 instances end past the last frame.*cam1"):
        IXMASDataModule(str(copy)).split_videos("val")
    dm = IXMASDataModule(str(copy), on_error="skip")
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        assert len(dm.split_videos("val")) == 14
    assert "end past the last frame" in caplog.text


def test_min_frames_drops_short_runs(root: Path) -> None:
    runs = _runs(root, "hedlena1")
    cutoff = sorted(end - start for _, start, end in runs)[1] + 1  # the two shortest runs go
    dm = IXMASDataModule(str(root), cameras=[0], min_frames=cutoff)
    kept = dm.split_videos("val")
    expected = [(s, e) for a, s, e in runs if a != 11 and e - s >= cutoff]
    assert [e[2] for e in kept] == expected  # type: ignore[misc]
    assert len(expected) < 3


def test_cli_fit_one_epoch(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = fit_args(
        "lowres_har.data.datasets.ixmas.IXMASDataModule",
        root,
        tmp_path,
        "--data.cameras=[0, 1]",
        "--test_after_fit=true",
    )
    assert main(args) == 0
    assert "Test top-1 accuracy" in capsys.readouterr().out
