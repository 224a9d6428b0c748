"""UCF101: classInd / trainlist / testlist parsing, label checks, the validation policy, missing
videos and a CLI fit on the tiny fixture in the official layout
(tests/data/ucf101/make_fixture.py)."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import fit_args

from lowres_har.cli import main
from lowres_har.data.datasets.ucf101 import (
    UCF101_SPLIT_DIR,
    UCF101DataModule,
    parse_ucf101_fold,
    read_ucf101_classes,
)

CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
TEST_GROUPS = {1: {1, 2}, 2: {3, 4}, 3: {5, 6}}


@pytest.fixture
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("ucf101")


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "UCF-101"))


def _group(path: str) -> int:
    match = re.search(r"_g(\d+)_c\d+\.avi$", path)
    assert match, path
    return int(match.group(1))


def test_class_index(root: Path) -> None:
    assert read_ucf101_classes(root / UCF101_SPLIT_DIR / "classInd.txt") == CLASSES


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_parse_fold(root: Path, fold: int) -> None:
    classes, splits = parse_ucf101_fold(root / UCF101_SPLIT_DIR, fold)
    assert classes == CLASSES
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "test": 6}
    for split, items in splits.items():
        assert Counter(label for _, label in items) == {i: len(items) // 3 for i in range(3)}
        for rel, label in items:
            assert rel.split("/")[0] == classes[label]
            assert (root / rel).is_file(), rel  # CRLF line ends were stripped
            assert (_group(rel) in TEST_GROUPS[fold]) == (split == "test")
    # the real dataset's spelling quirk survives: folder HandstandPushups, file v_HandStand...
    assert any("HandstandPushups/v_HandStandPushups_" in rel for rel, _ in splits["train"])


def test_class_order_follows_class_index(copy: Path) -> None:
    lists = copy / UCF101_SPLIT_DIR
    (lists / "classInd.txt").write_text("1 YoYo\n2 ApplyEyeMakeup\n3 HandstandPushups\n")
    new = {"YoYo": 1, "ApplyEyeMakeup": 2, "HandstandPushups": 3}
    lines = []
    for line in (lists / "trainlist01.txt").read_text().split():
        if "/" in line:
            lines.append(f"{line} {new[line.split('/')[0]]}")
    (lists / "trainlist01.txt").write_text("\n".join(lines) + "\n")
    dm = UCF101DataModule(root=str(copy))
    assert dm.class_names == ["YoYo", "ApplyEyeMakeup", "HandstandPushups"]
    for path, label in dm.split_videos("test"):
        assert Path(path).parent.name == dm.class_names[label]  # type: ignore[index]


def test_train_label_disagreeing_with_folder_names_the_line(copy: Path) -> None:
    train_list = copy / UCF101_SPLIT_DIR / "trainlist01.txt"
    lines = train_list.read_text().splitlines()
    rel = lines[4].split()[0]
    lines[4] = f"{rel} 3"  # an ApplyEyeMakeup clip labelled YoYo
    train_list.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"trainlist01.txt:5: label 3 \(class 'YoYo'\) disagrees"):
        parse_ucf101_fold(copy / UCF101_SPLIT_DIR, 1)


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        (
            "testlist02.txt",
            "Juggling/v_Juggling_g01_c01.avi",
            r"testlist02.txt:1: class folder 'Juggling'",
        ),
        ("trainlist02.txt", "YoYo/v_YoYo_g01_c01.avi three", r"trainlist02.txt:1: expected"),
        ("trainlist02.txt", "v_YoYo_g01_c01.avi 3", r"trainlist02.txt:1: expected '<Class>/"),
        ("classInd.txt", "x ApplyEyeMakeup", r"classInd.txt:1: expected"),
    ],
)
def test_malformed_lines(copy: Path, file: str, line: str, message: str) -> None:
    path = copy / UCF101_SPLIT_DIR / file
    path.write_text(line + "\n" + path.read_text())
    with pytest.raises(ValueError, match=message):
        parse_ucf101_fold(copy / UCF101_SPLIT_DIR, 2)


def test_class_index_gaps_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "classInd.txt"
    path.write_text("1 A\n3 B\n")
    with pytest.raises(ValueError, match="indices must be 1..2"):
        read_ucf101_classes(path)
    path.write_text("1 A\n2 A\n")
    with pytest.raises(ValueError, match="classInd.txt:2: class 'A' appears twice"):
        read_ucf101_classes(path)


def test_missing_files_are_named(root: Path, copy: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"UCF101 root.*absent"):
        UCF101DataModule(root=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match=f"{UCF101_SPLIT_DIR}"):
        UCF101DataModule(root=str(tmp_path))
    (copy / UCF101_SPLIT_DIR / "testlist03.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"fold 3 test list.*testlist03.txt"):
        UCF101DataModule(root=str(copy), fold=3)
    (copy / UCF101_SPLIT_DIR / "classInd.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"classInd.txt"):
        UCF101DataModule(root=str(copy))
    with pytest.raises(ValueError, match="fold must be 1, 2 or 3"):
        UCF101DataModule(root=str(root), fold=0)


def test_default_validation_is_the_test_list(root: Path) -> None:
    dm = UCF101DataModule(root=str(root), fold=3, num_workers=0)
    dm.setup()
    assert dm.num_classes == 3
    assert len(dm.train_dataset.videos) == 12
    assert dm.val_dataset.videos == dm.test_dataset.videos
    assert {_group(p) for p, _ in dm.test_dataset.videos} == TEST_GROUPS[3]


def test_val_fraction(root: Path) -> None:
    dm = UCF101DataModule(root=str(root), val_fraction=0.25, seed=0)
    train, val, test = (dm.split_videos(s) for s in ("train", "val", "test"))
    assert Counter(e[1] for e in val) == {0: 1, 1: 1, 2: 1}
    assert Counter(e[1] for e in train) == {0: 3, 1: 3, 2: 3}
    assert not {e[0] for e in train} & {e[0] for e in val}
    assert all(_group(e[0]) not in TEST_GROUPS[1] for e in train + val)
    assert {_group(e[0]) for e in test} == TEST_GROUPS[1]
    assert UCF101DataModule(root=str(root), val_fraction=0.25, seed=0).split_videos("val") == val


def test_missing_video_raise_or_skip(copy: Path, log_capture: pytest.LogCaptureFixture) -> None:
    victim = copy / "YoYo" / "v_YoYo_g01_c01.avi"  # test in fold 1
    victim.unlink()
    dm = UCF101DataModule(root=str(copy))
    assert len(dm.split_videos("train")) == 12
    with pytest.raises(FileNotFoundError, match=r"1 of 6 videos are missing.*on_error: skip"):
        dm.split_videos("test")
    kept = UCF101DataModule(root=str(copy), on_error="skip").split_videos("val")
    assert len(kept) == 5
    assert any(
        "1 of 6 videos are missing" in r.getMessage() and r.levelno == logging.WARNING
        for r in log_capture.records
    )


def test_cli_fit_one_epoch_and_test(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = fit_args(
        "lowres_har.data.datasets.ucf101.UCF101DataModule",
        root,
        tmp_path,
        "--data.val_fraction=0.25",
        "--test_after_fit=true",
    )
    assert main(args) == 0
    assert "Test top-1 accuracy" in capsys.readouterr().out
