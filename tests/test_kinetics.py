"""Kinetics-400/600/700 and Mini-Kinetics-200: CSV parsing, clip lookup (flat and per-class
folders, path_format), the val/test policy, missing clips and a CLI fit on the tiny fixture
(tests/data/kinetics/make_fixture.py)."""

from __future__ import annotations

import csv
import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import fit_args

from lowres_har.cli import main
from lowres_har.data.datasets.kinetics import (
    KineticsDataModule,
    find_kinetics_csv,
    index_clip_files,
    kinetics_class_names,
    read_kinetics_csv,
    read_ytid_list,
)

CLASSES = ["abseiling", "playing guitar", "tai chi"]


@pytest.fixture
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("kinetics")


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "kinetics"))


def _csv_labels(path: Path) -> dict[str, str]:
    """youtube_id → label, read with the csv module independently of the parser."""
    with path.open(newline="") as f:
        return {row["youtube_id"]: row["label"] for row in csv.DictReader(f)}


def _ytid(path: str) -> str:
    return Path(path).stem[: -len("_000000_000000")]


def test_read_csv(root: Path) -> None:
    clips = read_kinetics_csv(root / "annotations" / "train.csv")  # has the extra is_cc column
    assert len(clips) == 9
    assert kinetics_class_names(clips) == CLASSES  # "tai chi" was quoted in the file
    assert Counter(c.label for c in clips) == {c: 3 for c in CLASSES}
    for c in clips:
        assert c.time_end - c.time_start == 10
        assert c.stem == f"{c.youtube_id}_{c.time_start:06d}_{c.time_end:06d}"
        assert (root / "train" / f"{c.stem}.mp4").is_file()


def test_find_csv_and_index(root: Path) -> None:
    assert find_kinetics_csv(root / "annotations", "val").name == "validate.csv"
    index = index_clip_files(root / "val")  # per-class folders
    assert len(index) == 6
    assert {p.parent.name for p in index.values()} == set(CLASSES)


def test_splits_resolve_flat_and_per_class_layouts(root: Path) -> None:
    dm = KineticsDataModule(root=str(root), num_workers=0)
    assert dm.class_names == CLASSES and dm.num_classes == 3
    train, val, test = (dm.split_videos(s) for s in ("train", "val", "test"))
    assert (len(train), len(val)) == (9, 6)
    assert test == val  # test defaults to the validate split
    for entries, csv_name in ((train, "train.csv"), (val, "validate.csv")):
        truth = _csv_labels(root / "annotations" / csv_name)
        for path, label in entries:
            assert Path(path).is_file()
            assert CLASSES[label] == truth[_ytid(path)]  # type: ignore[index]
    assert {Path(p).parent.name for p, _ in val} == set(CLASSES)  # val/<label>/clip.mp4
    assert {Path(p).parent.name for p, _ in train} == {"train"}  # flat


def test_test_split_parameter(root: Path, copy: Path) -> None:
    dm = KineticsDataModule(root=str(root), test_split="test")
    test = dm.split_videos("test")
    truth = _csv_labels(root / "annotations" / "test.csv")
    assert len(test) == 6
    assert {_ytid(p) for p, _ in test} == set(truth)
    assert all(CLASSES[lab] == truth[_ytid(p)] for p, lab in test)  # type: ignore[index]
    # a release whose test CSV has no labels
    test_csv = copy / "annotations" / "test.csv"
    rows = [line.split(",", 1)[1] for line in test_csv.read_text().splitlines()]
    test_csv.write_text("\n".join(rows) + "\n")
    dm = KineticsDataModule(root=str(copy), test_split="test")
    assert len(dm.split_videos("val")) == 6
    with pytest.raises(ValueError, match=r"test.csv: missing column\(s\) label.*test_split: val"):
        dm.split_videos("test")
    assert len(read_kinetics_csv(test_csv, need_label=False)) == 6
    with pytest.raises(ValueError, match="test_split must be"):
        KineticsDataModule(root=str(root), test_split="validate")


def test_mini200_subset(root: Path) -> None:
    dm = KineticsDataModule(root=str(root), variant="mini200")
    assert dm.class_names == ["abseiling", "playing guitar"]
    train, val = dm.split_videos("train"), dm.split_videos("val")
    ids = read_ytid_list(root / "annotations" / "train_ytid_list.txt")
    assert [_ytid(p) for p, _ in train] == ids
    assert Counter(lab for _, lab in train) == {0: 3, 1: 2}
    assert Counter(lab for _, lab in val) == {0: 2, 1: 2}
    assert dm.split_videos("test") == val
    with pytest.raises(ValueError, match="no test list"):
        KineticsDataModule(root=str(root), variant="mini200", test_split="test")


def test_mini200_ids_not_in_csv(copy: Path, log_capture: pytest.LogCaptureFixture) -> None:
    ids = copy / "annotations" / "val_ytid_list.txt"
    ids.write_text(ids.read_text() + "notAnIdXYZ\n")
    with pytest.raises(ValueError, match=r"1 of 5 ids are not in .*validate.csv.*on_error: skip"):
        KineticsDataModule(root=str(copy), variant="mini200")
    dm = KineticsDataModule(root=str(copy), variant="mini200", on_error="skip")
    assert len(dm.split_videos("val")) == 4
    assert any("notAnIdXYZ" in r.getMessage() for r in log_capture.records)


def test_path_format_and_split_dirs(root: Path) -> None:
    per_class = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
    dm = KineticsDataModule(root=str(root), path_format=per_class)
    val = dm.split_videos("val")
    assert len(val) == 6 and all(Path(p).is_file() for p, _ in val)
    # the train clips are flat, so this pattern misses all of them, and the message says what to do
    with pytest.raises(FileNotFoundError, match=r"9 of 9 videos are missing.*on_error: skip"):
        dm.split_videos("train")
    with pytest.raises(ValueError, match=r"path_format .*\{youtube_id\}"):
        KineticsDataModule(root=str(root), path_format="{split}/{id}.mp4")


def test_split_dirs(copy: Path) -> None:
    (copy / "val").rename(copy / "videos_val")
    with pytest.raises(FileNotFoundError, match=r"val videos not found.*kinetics/val \(also tried"):
        KineticsDataModule(root=str(copy)).split_videos("val")
    dm = KineticsDataModule(root=str(copy), split_dirs={"val": "videos_val"})
    val = dm.split_videos("val")
    assert len(val) == 6 and all(Path(p).parent.parent.name == "videos_val" for p, _ in val)
    # {split} in path_format is the split's folder name
    pattern = "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
    dm = KineticsDataModule(root=str(copy), split_dirs={"val": "videos_val"}, path_format=pattern)
    assert sorted(dm.split_videos("val")) == sorted(val)
    with pytest.raises(ValueError, match="split_dirs keys"):
        KineticsDataModule(root=str(copy), split_dirs={"validation": "x"})


def test_missing_clip_raise_or_skip(copy: Path, log_capture: pytest.LogCaptureFixture) -> None:
    clips = read_kinetics_csv(copy / "annotations" / "train.csv")
    (copy / "train" / f"{clips[4].stem}.mp4").unlink()
    dm = KineticsDataModule(root=str(copy))
    with pytest.raises(FileNotFoundError) as err:
        dm.split_videos("train")
    message = str(err.value)
    assert "Kinetics-400 train: 1 of 9 videos are missing" in message
    assert f"{clips[4].stem}.mp4" in message and "on_error: skip" in message
    kept = KineticsDataModule(root=str(copy), on_error="skip").split_videos("train")
    assert len(kept) == 8 and clips[4].youtube_id not in {_ytid(p) for p, _ in kept}
    assert any(
        "1 of 9 videos are missing" in r.getMessage() and r.levelno == logging.WARNING
        for r in log_capture.records
    )


def test_errors_name_the_expected_paths(root: Path, copy: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"Kinetics annotation folder.*annotations"):
        KineticsDataModule(root=str(tmp_path))
    (copy / "annotations" / "validate.csv").unlink()
    dm = KineticsDataModule(root=str(copy))
    with pytest.raises(FileNotFoundError, match=r"val annotations not found.*validate.csv"):
        dm.split_videos("val")
    shutil.rmtree(copy / "train")
    with pytest.raises(FileNotFoundError, match=r"train videos not found.*kinetics/train"):
        KineticsDataModule(root=str(copy)).split_videos("train")
    with pytest.raises(ValueError, match="variant must be one of"):
        KineticsDataModule(root=str(root), variant="500")


def test_bad_csv_rows(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(
        "label,youtube_id,time_start,time_end,split\na,abc,1,11,train\nb,def,x,9,train\n"
    )
    with pytest.raises(ValueError, match=r"train.csv:3: time_start must be a number"):
        read_kinetics_csv(path)
    path.write_text("label,youtube_id,time_start,time_end,split\na,abc,11,1,train\n")
    with pytest.raises(ValueError, match=r"train.csv:2: time_end 1 is not after"):
        read_kinetics_csv(path)
    path.write_text("name,youtube_id,start,end\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) time_start, time_end, label"):
        read_kinetics_csv(path)


def test_class_list_and_variants(
    root: Path, tmp_path: Path, log_capture: pytest.LogCaptureFixture
) -> None:
    order = ["tai chi", "abseiling", "playing guitar"]
    (tmp_path / "classes.txt").write_text("\n".join(order) + "\n")
    dm = KineticsDataModule(root=str(root), variant=700, class_list=str(tmp_path / "classes.txt"))
    assert dm.class_names == order and dm.name == "Kinetics-700"
    truth = _csv_labels(root / "annotations" / "train.csv")
    assert all(order[lab] == truth[_ytid(p)] for p, lab in dm.split_videos("train"))  # type: ignore[index]
    # the fixture has 3 classes, not 700: a warning says so
    assert any("name 3 classes, not 700" in r.getMessage() for r in log_capture.records)
    (tmp_path / "classes.txt").write_text("abseiling\n")
    dm = KineticsDataModule(root=str(root), class_list=str(tmp_path / "classes.txt"))
    with pytest.raises(ValueError, match="2 class\\(es\\) that are not among the 1 classes"):
        dm.split_videos("train")


def test_cli_fit_one_epoch_and_test(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = fit_args(
        "lowres_har.data.datasets.kinetics.KineticsDataModule",
        root,
        tmp_path,
        "--data.variant=400",
        "--test_after_fit=true",
    )
    assert main(args) == 0
    assert "Test top-1 accuracy" in capsys.readouterr().out
