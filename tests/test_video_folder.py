"""VideoFolder (class tree, split folders, CSV lists), the shared stratified split, missing videos
and a CLI fit on the tiny fixture (tests/data/video_folder/make_fixture.py)."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import fit_args

from lowres_har.cli import main
from lowres_har.data.datasets.folder import (
    VideoFolderDataModule,
    read_video_csv,
    scan_class_tree,
    sort_class_names,
)
from lowres_har.data.datasets.splits import read_lines, stratified_split
from lowres_har.data.io import read_video

CLASSES = ["jump", "run", "wave"]


@pytest.fixture
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("video_folder")


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "vf"))


def _names(entries: list) -> set[str]:
    return {Path(e[0]).name for e in entries}


# ------------------------------------------------------------------------------ stratified split
def test_stratified_split_properties() -> None:
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 2 + ["d"]
    parts = stratified_split(labels, {"val": 0.2, "test": 0.2}, seed=1)
    everything = sorted(i for idx in parts.values() for i in idx)
    assert everything == list(range(len(labels)))  # a partition
    count = {k: Counter(labels[i] for i in v) for k, v in parts.items()}
    assert count["val"]["a"] == 2 and count["test"]["a"] == 2 and count["train"]["a"] == 6
    assert count["val"]["b"] == 1 and count["test"]["b"] == 1 and count["train"]["b"] == 3
    # tiny classes keep a training item; the single-item class stays in train
    assert count["train"]["c"] >= 1 and count["train"]["d"] == 1
    assert stratified_split(labels, {"val": 0.2, "test": 0.2}, seed=1) == parts
    assert any(
        stratified_split(labels, {"val": 0.2, "test": 0.2}, seed=s) != parts for s in range(2, 6)
    )


def test_stratified_split_ignores_listing_order() -> None:
    keys = [f"video_{i:02d}" for i in range(12)]
    labels = [i % 2 for i in range(12)]
    parts = stratified_split(labels, {"val": 0.25}, seed=0, keys=keys)
    order = np.random.default_rng(0).permutation(12)
    shuffled = stratified_split(
        [labels[i] for i in order], {"val": 0.25}, seed=0, keys=[keys[i] for i in order]
    )
    assert sorted(keys[order[i]] for i in shuffled["val"]) == sorted(keys[i] for i in parts["val"])


def test_stratified_split_class_independence() -> None:
    # adding a class does not reshuffle the others
    base = stratified_split(["x"] * 8, {"val": 0.25}, seed=0)
    more = stratified_split(["x"] * 8 + ["y"] * 8, {"val": 0.25}, seed=0)
    assert [i for i in more["val"] if i < 8] == base["val"]


@pytest.mark.parametrize("fractions", [{"val": 1.0}, {"val": -0.1}, {"val": 0.6, "test": 0.5}])
def test_stratified_split_rejects_bad_fractions(fractions: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="fraction"):
        stratified_split([0, 1], fractions)


def test_read_lines_tolerates_bom_crlf_and_blanks(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes("\ufeffa 1 \r\n\r\n  b 2\r\n".encode())
    assert read_lines(path) == [(1, "a 1"), (3, "b 2")]


# ------------------------------------------------------------------------------------- layouts
def test_class_tree(root: Path, log_capture: pytest.LogCaptureFixture) -> None:
    found = scan_class_tree(root / "tree")
    assert len(found) == 15  # Thumbs.db and the root README are not videos
    assert Counter(lab for _, lab in found) == {c: 5 for c in CLASSES}
    frame_folders = [p for p, _ in found if Path(p).is_dir()]
    assert sorted(Path(p).name for p in frame_folders) == [f"{c}_e" for c in CLASSES]
    frames, _ = read_video(frame_folders[0])
    assert frames.shape == (12, 32, 40, 3)
    assert any("ignored 3 file(s)" in r.getMessage() for r in log_capture.records)

    dm = VideoFolderDataModule(root=str(root / "tree"), num_workers=0)
    assert dm.layout == "class_tree" and dm.class_names == CLASSES
    dm.setup()
    splits = {s: dm.split_videos(s) for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in splits.items()} == {"train": 9, "val": 3, "test": 3}
    for entries in splits.values():  # stratified: every class in every split
        assert sorted(Counter(e[1] for e in entries)) == [0, 1, 2]
    names = [_names(v) for v in splits.values()]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    for path, label in splits["train"]:
        assert Path(path).parent.name == CLASSES[label]  # type: ignore[index]
    assert dm.train_dataset.videos == [(str(p), lab) for p, lab in splits["train"]]
    again = VideoFolderDataModule(root=str(root / "tree"))
    assert again.split_videos("val") == splits["val"]


def test_extensions_filter(root: Path) -> None:
    dm = VideoFolderDataModule(root=str(root / "tree"), extensions=["MP4"], val_fraction=0.34)
    every = [e for s in ("train", "val", "test") for e in dm.split_videos(s)]
    # 2 .mp4 files and the frame folder per class
    assert {Path(p).suffix for p, _ in every} == {".mp4", ""}
    assert len({p for p, _ in every}) == 9


def test_split_folders(root: Path) -> None:
    dm = VideoFolderDataModule(root=str(root / "splits"))
    assert dm.layout == "split_folders" and dm.class_names == CLASSES
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        entries = dm.split_videos(split)
        assert Counter(e[1] for e in entries) == {0: n, 1: n, 2: n}
        assert all(Path(p).parts[-3] == split for p, _ in entries)


def test_split_folders_missing_val_and_test(
    copy: Path, log_capture: pytest.LogCaptureFixture
) -> None:
    shutil.rmtree(copy / "splits" / "val")
    shutil.rmtree(copy / "splits" / "test")
    dm = VideoFolderDataModule(root=str(copy / "splits"), val_fraction=0.34)
    train, val, test = (dm.split_videos(s) for s in ("train", "val", "test"))
    assert Counter(e[1] for e in val) == {0: 1, 1: 1, 2: 1}  # carved from train
    assert len(train) == 6 and not _names(train) & _names(val)
    assert test == val
    messages = " ".join(r.getMessage() for r in log_capture.records)
    assert "carved 3 videos from train" in messages and "testing on the val split" in messages
    with pytest.raises(ValueError, match="no 'val' split and val_fraction is 0"):
        VideoFolderDataModule(root=str(copy / "splits"), val_fraction=0)


def test_split_folder_errors(copy: Path) -> None:
    (copy / "splits" / "val" / "swim").mkdir()
    shutil.copy(next((copy / "splits" / "val" / "run").iterdir()), copy / "splits/val/swim/x.mp4")
    with pytest.raises(ValueError, match="val has class\\(es\\) with no training video: swim"):
        VideoFolderDataModule(root=str(copy / "splits"))
    shutil.rmtree(copy / "splits" / "train")
    with pytest.raises(FileNotFoundError, match=r"no train folder.*splits/train"):
        VideoFolderDataModule(root=str(copy / "splits"))
    (copy / "tree" / "empty_class").mkdir()
    with pytest.raises(ValueError, match="empty_class: class folder holds no video"):
        VideoFolderDataModule(root=str(copy / "tree"))


def test_csv_with_splits(root: Path) -> None:
    dm = VideoFolderDataModule(csv=str(root / "list.csv"))
    assert dm.layout == "csv" and dm.class_names == CLASSES
    train, val, test = (dm.split_videos(s) for s in ("train", "val", "test"))
    assert {Path(p).name[-5:] for p, _ in train} == {"a.mp4", "b.mp4", "c.avi"}
    assert _names(val) == {f"{c}_d.mkv" for c in CLASSES}
    assert _names(test) == {f"{c}_e" for c in CLASSES}  # frame folders
    assert all(Path(p).is_absolute() and Path(p).exists() for p, _ in train + val + test)


def test_csv_without_header_or_split_matches_class_tree(root: Path) -> None:
    rows = read_video_csv(root / "list_nosplit.csv")
    assert len(rows) == 15 and all(split is None for _, _, split in rows)
    listed = VideoFolderDataModule(csv=str(root / "list_nosplit.csv"))
    tree = VideoFolderDataModule(root=str(root / "tree"))
    for split in ("train", "val", "test"):
        assert listed.split_videos(split) == tree.split_videos(split)


def test_csv_absolute_paths_and_numeric_labels(root: Path, tmp_path: Path) -> None:
    videos = sorted((root / "tree" / "run").glob("*.mp4")) + sorted(
        (root / "tree" / "jump").glob("*.mp4")
    )
    lines = [f"{p},{10 if 'run' in p.name else 9},train" for p in videos]
    lines += [f"{videos[0]},10,val", f"{videos[-1]},9,val"]
    (tmp_path / "abs.csv").write_text("\n".join(lines) + "\n")
    dm = VideoFolderDataModule(csv=str(tmp_path / "abs.csv"))
    assert dm.class_names == ["9", "10"]  # numeric order, not "10" < "9"
    assert [lab for _, lab in dm.split_videos("val")] == [1, 0]
    assert sort_class_names(["b", "a", "C"]) == ["C", "a", "b"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,label,split\na.mp4,x,train\nb.mp4,y,holdout\n", r"list.csv:3: split must be"),
        ("a.mp4,x,train\nb.mp4,y\n", r"list.csv:2: either every row names a split"),
        ("a.mp4\n", r"list.csv:1: expected 'path,label\[,split\]'"),
        ("a.mp4,,train\n", r"list.csv:1: empty path or label"),
        ("path,label\n", r"list.csv: no rows"),
    ],
)
def test_csv_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "list.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_video_csv(tmp_path / "list.csv")


def test_argument_errors(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one of root"):
        VideoFolderDataModule()
    with pytest.raises(ValueError, match="exactly one of root"):
        VideoFolderDataModule(root=str(root / "tree"), csv=str(root / "list.csv"))
    with pytest.raises(FileNotFoundError, match=r"VideoFolder root.*missing"):
        VideoFolderDataModule(root=str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"video list CSV.*nope.csv"):
        VideoFolderDataModule(csv=str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match="must be below 1"):
        VideoFolderDataModule(root=str(root / "tree"), val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="both 0"):
        VideoFolderDataModule(root=str(root / "tree"), val_fraction=0, test_fraction=0)


def test_missing_video_raise_or_skip(
    root: Path, tmp_path: Path, log_capture: pytest.LogCaptureFixture
) -> None:
    text = (root / "list.csv").read_text().replace("tree/", f"{root}/tree/")
    text += "tree/run/run_gone.mp4,run,train\n"  # relative to the CSV in tmp_path: absent
    (tmp_path / "list.csv").write_text(text)
    dm = VideoFolderDataModule(csv=str(tmp_path / "list.csv"))
    with pytest.raises(FileNotFoundError, match=r"1 of 10 videos are missing.*run_gone.mp4"):
        dm.split_videos("train")
    dm = VideoFolderDataModule(csv=str(tmp_path / "list.csv"), on_error="skip")
    assert len(dm.split_videos("train")) == 9
    assert any("1 of 10 videos are missing" in r.getMessage() for r in log_capture.records)


def test_cli_fit_one_epoch_and_test(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = fit_args(
        "lowres_har.data.datasets.folder.VideoFolderDataModule",
        root,
        tmp_path,
        f"--data.root={root / 'tree'}",
        "--test_after_fit=true",
    )
    assert main(args) == 0
    assert "Test top-1 accuracy" in capsys.readouterr().out
