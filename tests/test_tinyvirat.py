"""TinyVIRAT-v2: JSON parsing, multi-hot labels, the val/test switch, clip ids, missing videos
and a one-epoch CLI fit in multi-label mode, on the tiny fixture from
``tests/data/tinyvirat/make_fixture.py``."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import fit_args

from lowres_har.cli import main
from lowres_har.data.datasets.tinyvirat import (
    TinyVIRATDataModule,
    multi_hot,
    read_class_map,
    read_tinyvirat_json,
)
from lowres_har.data.io import read_video

CLASSES = ["activity_walking", "activity_standing", "Talking", "activity_carrying"]


@pytest.fixture(scope="module")
def root(dataset_fixture: Callable[[str], Path]) -> Path:
    return dataset_fixture("tinyvirat")


@pytest.fixture
def copy(root: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture (JSON files and videos)."""
    out = tmp_path / "TinyVIRAT_V2"
    shutil.copytree(root, out)
    return out


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def test_class_order_follows_indices(root: Path) -> None:
    raw = _json(root / "class_map.json")
    names = read_class_map(root / "class_map.json")
    assert list(raw) != names  # the fixture writes the keys out of index order
    assert names == CLASSES
    assert [raw[n] for n in names] == list(range(len(names)))


def test_splits_counts_labels_and_dims(root: Path) -> None:
    dm = TinyVIRATDataModule(str(root))
    assert dm.num_classes == 4 and dm.class_names == CLASSES and dm.multilabel
    for split, name in (("train", "tiny_train_v2.json"), ("val", "tiny_val_v2.json")):
        raw = _json(root / name)
        entries = dm.split_videos(split)
        assert len(entries) == len(raw) == {"train": 12, "val": 8}[split]
        for entry, item in zip(entries, raw, strict=True):
            assert entry[0] == str(root / "videos" / split / item["path"])
            expected = [1.0 if c in item["label"] else 0.0 for c in CLASSES]
            assert list(entry[1]) == expected  # type: ignore[arg-type]
        assert dm.video_ids(split) == [item["id"] for item in raw]
    records = read_tinyvirat_json(root / "tiny_train_v2.json")
    assert any(len(r.labels) == 2 for r in records)  # multi-label clips exist
    assert len({r.dim[1:] for r in records}) >= 4  # mixed native sizes
    # dim is informational, but the fixture must hold what the files really contain
    for rec in records[:4]:
        frames, _ = read_video(root / "videos" / "train" / rec.path)
        assert frames.shape[:3] == rec.dim


def test_test_split_defaults_to_val(root: Path) -> None:
    dm = TinyVIRATDataModule(str(root))
    assert dm.split_videos("test") == dm.split_videos("val")
    assert dm.test_ids == dm.video_ids("val")
    assert dm.test_ids[2] == "00003"  # the val file skips id 00002


def test_public_test_split_is_unlabelled(root: Path) -> None:
    dm = TinyVIRATDataModule(str(root), test_split="test")
    raw = _json(root / "tiny_test_v2_public.json")
    entries = dm.split_videos("test")
    assert [e[0] for e in entries] == [str(root / "videos" / "test" / r["path"]) for r in raw]
    assert all(list(e[1]) == [0.0] * 4 for e in entries)  # type: ignore[arg-type]
    assert dm.test_ids == [r["id"] for r in raw]
    assert dm.split_videos("val") != entries  # validation stays the official val split


def test_dataset_items_carry_multi_hot_labels(root: Path) -> None:
    dm = TinyVIRATDataModule(str(root), num_workers=0, num_frames=4, batch_size=4)
    dm.setup("validate")
    item = dm.val_dataset[3]
    assert item["video"].shape == (3, 4, 32, 32)
    assert item["label"].tolist() == [1.0, 0.0, 0.0, 1.0]  # carrying + walking
    assert dm.val_dataset.videos[3][0].endswith(f"{dm.video_ids('val')[3]}.mp4")


def test_multi_hot_rejects_unknown_class() -> None:
    assert multi_hot(["b", "a", "b"], ["a", "b", "c"]) == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="x.json: entry 3: unknown class 'd'"):
        multi_hot(["d"], ["a", "b"], where="x.json: entry 3")


def test_missing_root_and_files_are_named(copy: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.*class_map.json"):
        TinyVIRATDataModule(str(tmp_path / "nowhere"))
    (copy / "tiny_val_v2.json").unlink()
    dm = TinyVIRATDataModule(str(copy))
    with pytest.raises(FileNotFoundError, match="tiny_val_v2.json not found"):
        dm.split_videos("val")
    (copy / "class_map.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"class_map.json not found"):
        TinyVIRATDataModule(str(copy))
    with pytest.raises(ValueError, match="test_split"):
        TinyVIRATDataModule(str(copy), test_split="private")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d[1]["label"].append("Dancing"), r"entry 1 \(id '00001'\): unknown class"),
        (lambda d: d[2].pop("path"), r"entry 2 \(id '00002'\): missing field\(s\) path"),
        (lambda d: d[0].update(dim=[8, 12]), r"entry 0 .*dim must be three positive"),
        (lambda d: d[3].update(id="00000"), r"entry 3 .*id '00000' repeats entry 0"),
        (lambda d: d[0].update(path="../val/x.mp4"), r"must stay inside"),
        (lambda d: d[0].update(label="Talking"), r"label must be a list"),
    ],
)
def test_bad_train_entries(copy: Path, mutate: Callable[[Any], Any], message: str) -> None:
    path = copy / "tiny_train_v2.json"
    data = _json(path)
    mutate(data)
    path.write_text(json.dumps(data))
    dm = TinyVIRATDataModule(str(copy))
    with pytest.raises(ValueError, match=message) as info:
        dm.split_videos("train")
    assert "tiny_train_v2.json" in str(info.value)


def test_bad_json_and_class_map(copy: Path) -> None:
    (copy / "tiny_train_v2.json").write_text('[{"id": "0",}')
    with pytest.raises(ValueError, match=r"tiny_train_v2.json: not valid JSON \(line 1"):
        TinyVIRATDataModule(str(copy)).split_videos("train")
    (copy / "class_map.json").write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(ValueError, match="class_map.json: class indices must be 0..1"):
        TinyVIRATDataModule(str(copy))


def test_missing_video_raise_or_skip(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = _json(copy / "tiny_val_v2.json")
    (copy / "videos" / "val" / raw[4]["path"]).unlink()
    with pytest.raises(FileNotFoundError, match="TinyVIRAT-v2 val: 1 of 8 videos are missing"):
        TinyVIRATDataModule(str(copy)).split_videos("val")
    dm = TinyVIRATDataModule(str(copy), on_error="skip")
    with caplog.at_level(logging.WARNING, logger="lowres_har"):
        entries = dm.split_videos("val")
    assert "1 of 8 videos are missing" in caplog.text
    assert len(entries) == 7
    expected_ids = [r["id"] for i, r in enumerate(raw) if i != 4]
    assert dm.video_ids("val") == expected_ids  # ids stay aligned with the kept videos


def _cli_args(root: Path, tmp_path: Path) -> list[str]:
    return fit_args("lowres_har.data.datasets.tinyvirat.TinyVIRATDataModule", root, tmp_path)


def test_cli_fit_multilabel_one_epoch(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main([*_cli_args(root, tmp_path), "--model.multilabel=true", "--test_after_fit=true"]) == 0
    )
    out = capsys.readouterr().out
    for metric in ("test/mAP", "test/f1_macro", "test/video_mAP"):  # multi-label metrics ran
        assert metric in out


def test_single_label_task_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multilabel: true"):
        main(_cli_args(root, tmp_path))
