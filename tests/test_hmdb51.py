"""HMDB51: split-file parsing, the validation policy, error messages, missing videos and a CLI fit
on the tiny fixture in the official layout (tests/data/hmdb51/make_fixture.py)."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import fit_args

from lowres_har.cli import main
from lowres_har.data.datasets.hmdb51 import (
    HMDB51_SPLIT_DIR,
    HMDB51DataModule,
    hmdb51_class_names,
    parse_hmdb51_fold,
)

CLASSES = ["brush_hair", "climb_stairs", "wave"]
#: Clip indices tested per fold in the fixture (4 train, 2 test, 1 unused per class).
TESTED = {1: {0, 1}, 2: {2, 3}, 3: {4, 5}}


@pytest.fixture
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("hmdb51")


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    """A private copy of the fixture that a test may damage."""
    return Path(shutil.copytree(root, tmp_path / "hmdb51"))


def _index(rel: str) -> int:
    return int(Path(rel).stem.rsplit("_", 1)[1])


@pytest.mark.parametrize("fold", [1, 2, 3])
def test_parse_fold(root: Path, fold: int) -> None:
    classes, splits = parse_hmdb51_fold(root / HMDB51_SPLIT_DIR, fold)
    assert classes == CLASSES
    assert {k: len(v) for k, v in splits.items()} == {"train": 12, "test": 6, "unused": 3}
    for split, items in splits.items():
        for rel, label in items:
            folder = rel.split("/")[0]
            assert folder == classes[label]
            assert (root / rel).is_file()
            tested = _index(rel) in TESTED[fold]
            assert tested == (split == "test"), (split, rel)
        assert Counter(label for _, label in items) == {
            0: len(items) // 3,
            1: len(items) // 3,
            2: len(items) // 3,
        }
    # a video is in exactly one list per fold
    rels = [rel for items in splits.values() for rel, _ in items]
    assert len(rels) == len(set(rels)) == 21


def test_class_names_from_file_prefixes(root: Path) -> None:
    assert hmdb51_class_names(root / HMDB51_SPLIT_DIR, 2) == CLASSES


def test_whitespace_tolerance(root: Path, copy: Path) -> None:
    split_file = copy / HMDB51_SPLIT_DIR / "wave_test_split1.txt"
    lines = split_file.read_text().splitlines()
    messy = "\ufeff" + "\r\n".join(f"  {line}\t " for line in lines[:3]) + "\r\n\r\n"
    messy += "\r\n".join(lines[3:]) + "\r\n   \r\n"
    split_file.write_bytes(messy.encode("utf-8"))
    # BOM, CRLF, tabs, padding and blank lines change nothing
    assert parse_hmdb51_fold(copy / HMDB51_SPLIT_DIR, 1) == parse_hmdb51_fold(
        root / HMDB51_SPLIT_DIR, 1
    )
    classes, splits = parse_hmdb51_fold(copy / HMDB51_SPLIT_DIR, 1)
    wave_test = sorted(_index(rel) for rel, lab in splits["test"] if classes[lab] == "wave")
    assert wave_test == [0, 1]


def test_datamodule_validates_on_test_list_by_default(root: Path) -> None:
    dm = HMDB51DataModule(root=str(root), num_workers=0)
    assert dm.num_classes == 3 and dm.class_names == CLASSES
    dm.setup()
    assert len(dm.train_dataset.videos) == 12
    assert dm.val_dataset.videos == dm.test_dataset.videos
    assert {_index(p) for p, _ in dm.test_dataset.videos} == TESTED[1]
    assert all(Path(p).parent.name == CLASSES[int(lab)] for p, lab in dm.train_dataset.videos)  # type: ignore[arg-type]


def test_val_fraction_carves_stratified_validation(root: Path) -> None:
    dm = HMDB51DataModule(root=str(root), fold=2, val_fraction=0.25, seed=3)
    train, val, test = (dm.split_videos(s) for s in ("train", "val", "test"))
    official_train = {
        str(root / rel) for rel, _ in parse_hmdb51_fold(dm.annotation_dir, 2)[1]["train"]
    }
    assert {e[0] for e in train} | {e[0] for e in val} == official_train
    assert not {e[0] for e in train} & {e[0] for e in val}
    assert Counter(e[1] for e in val) == {0: 1, 1: 1, 2: 1}  # 25 % of 4 per class
    assert Counter(e[1] for e in train) == {0: 3, 1: 3, 2: 3}
    assert {_index(e[0]) for e in test} == TESTED[2]
    # deterministic for a seed; the seed matters
    again = HMDB51DataModule(root=str(root), fold=2, val_fraction=0.25, seed=3)
    assert again.split_videos("val") == val
    others = [
        HMDB51DataModule(root=str(root), fold=2, val_fraction=0.25, seed=s).split_videos("val")
        for s in range(4, 9)
    ]
    assert any(o != val for o in others)


def test_include_unused(root: Path) -> None:
    dm = HMDB51DataModule(root=str(root), fold=3, include_unused=True)
    train = dm.split_videos("train")
    assert len(train) == 15 and Counter(e[1] for e in train) == {0: 5, 1: 5, 2: 5}
    assert {_index(e[0]) for e in train} == set(range(7)) - TESTED[3]
    assert {_index(e[0]) for e in dm.split_videos("test")} == TESTED[3]


def test_missing_root_and_split_folder(tmp_path: Path, root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="HMDB51 root.*nowhere"):
        HMDB51DataModule(root=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=f"split folder.*{HMDB51_SPLIT_DIR}"):
        HMDB51DataModule(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"no HMDB51 split files for fold 1.*_test_split1"):
        HMDB51DataModule(root=str(root), annotation_dir=str(tmp_path))
    with pytest.raises(ValueError, match="fold must be one of"):
        HMDB51DataModule(root=str(root), fold=4)
    with pytest.raises(ValueError, match="val_fraction"):
        HMDB51DataModule(root=str(root), val_fraction=1.5)


@pytest.mark.parametrize("bad", ["video.avi 3", "video.avi", "video.avi 1 extra"])
def test_bad_line_names_file_and_line(copy: Path, bad: str) -> None:
    split_file = copy / HMDB51_SPLIT_DIR / "climb_stairs_test_split3.txt"
    lines = split_file.read_text().splitlines()
    lines.insert(2, bad)
    split_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"climb_stairs_test_split3.txt:3: expected"):
        parse_hmdb51_fold(copy / HMDB51_SPLIT_DIR, 3)


def test_missing_video_raise_or_skip(copy: Path, log_capture: pytest.LogCaptureFixture) -> None:
    victim = next((copy / "wave").glob("Clip03_*.avi"))  # train in fold 1
    victim.unlink()
    dm = HMDB51DataModule(root=str(copy))
    with pytest.raises(
        FileNotFoundError, match=r"1 of 12 videos are missing.*on_error: skip"
    ) as err:
        dm.split_videos("train")
    assert victim.name in str(err.value)
    assert len(dm.split_videos("test")) == 6  # other splits are unaffected
    dm = HMDB51DataModule(root=str(copy), on_error="skip")
    kept = dm.split_videos("train")
    assert len(kept) == 11 and str(victim) not in {e[0] for e in kept}
    warnings = [r for r in log_capture.records if r.levelno == logging.WARNING]
    assert any("1 of 12 videos are missing" in r.getMessage() for r in warnings)


def test_cli_fit_one_epoch_and_test(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = fit_args(
        "lowres_har.data.datasets.hmdb51.HMDB51DataModule",
        root,
        tmp_path,
        "--data.fold=2",
        "--test_after_fit=true",
    )
    assert main(args) == 0
    assert "Test top-1 accuracy" in capsys.readouterr().out
