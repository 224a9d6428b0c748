"""UCF101 (Soomro et al., 2012): 101 action classes, 13,320 clips, three official train/test splits.

On-disk layout (``UCF101.rar`` and ``UCF101TrainTestSplits-RecognitionTask.zip`` unpacked)::

    <root>/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi ...   one folder per class
    <root>/ucfTrainTestlist/classInd.txt                      "<1-based index> <ClassName>"
    <root>/ucfTrainTestlist/trainlist01.txt ...               "<Class>/<video>.avi <1-based label>"
    <root>/ucfTrainTestlist/testlist01.txt ...                "<Class>/<video>.avi"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lowres_har.data.datamodules import VideoDataModule
from lowres_har.data.datasets.base import VideoEntry, check_videos
from lowres_har.data.datasets.splits import (
    check_fraction,
    read_lines,
    require_dir,
    require_file,
    stratified_split,
)

__all__ = [
    "UCF101_SPLIT_DIR",
    "UCF101DataModule",
    "parse_ucf101_fold",
    "read_ucf101_classes",
]

#: Folder of the official split lists (from ``UCF101TrainTestSplits-RecognitionTask.zip``).
UCF101_SPLIT_DIR = "ucfTrainTestlist"


def read_ucf101_classes(path: str | Path) -> list[str]:
    """Class names from ``classInd.txt`` (lines ``<1-based index> <ClassName>``).

    Returns:
        The names in index order: position ``i`` is the 0-based label of index ``i + 1``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line does not parse, or the indices are not exactly ``1..N`` (the message
            names the file and line).
    """
    p = require_file(path, "UCF101 class index (classInd.txt)")
    by_index: dict[int, str] = {}
    for n, line in read_lines(p):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{p}:{n}: expected '<1-based index> <ClassName>', got {line!r}")
        index = int(parts[0])
        if index in by_index:
            raise ValueError(f"{p}:{n}: index {index} appears twice")
        if parts[1] in by_index.values():
            raise ValueError(f"{p}:{n}: class {parts[1]!r} appears twice")
        by_index[index] = parts[1]
    if not by_index:
        raise ValueError(f"{p}: no classes listed")
    if sorted(by_index) != list(range(1, len(by_index) + 1)):
        raise ValueError(f"{p}: class indices must be 1..{len(by_index)} without gaps")
    return [by_index[i] for i in range(1, len(by_index) + 1)]


def _class_of(rel: str, classes: dict[str, int], where: str, line: str) -> int:
    folder, _, name = rel.replace("\\", "/").partition("/")
    if not name:
        raise ValueError(f"{where}: expected '<Class>/<video>.avi', got {line!r}")
    if folder not in classes:
        raise ValueError(f"{where}: class folder {folder!r} is not in classInd.txt ({line!r})")
    return classes[folder]


def parse_ucf101_fold(
    annotation_dir: str | Path, fold: int = 1
) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Read ``classInd.txt``, ``trainlist0{fold}.txt`` and ``testlist0{fold}.txt``.

    Train labels are read from the list and checked against the class folder of the path; test
    labels come from the folder (the test lists carry none).

    Args:
        annotation_dir: the ``ucfTrainTestlist`` folder.
        fold: 1, 2 or 3.

    Returns:
        ``(class_names, splits)``: ``splits`` maps ``"train"`` and ``"test"`` to lists of
        ``(relative_path, label)`` with ``relative_path = "<Class>/<video>.avi"`` (relative to the
        dataset root) and the 0-based ``label``.

    Raises:
        FileNotFoundError: the folder or one of the three files is missing.
        ValueError: a line does not parse, names an unknown class, or a train label disagrees with
            the folder (file and line number in the message).
    """
    if fold not in (1, 2, 3):
        raise ValueError(f"fold must be 1, 2 or 3, got {fold!r}")
    directory = require_dir(
        annotation_dir,
        "UCF101 split folder (ucfTrainTestlist from UCF101TrainTestSplits-RecognitionTask.zip; "
        "see annotation_dir)",
    )
    class_names = read_ucf101_classes(directory / "classInd.txt")
    classes = {name: i for i, name in enumerate(class_names)}
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    train_file = require_file(directory / f"trainlist0{fold}.txt", f"UCF101 fold {fold} train list")
    for n, line in read_lines(train_file):
        parts = line.split()
        where = f"{train_file}:{n}"
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(
                f"{where}: expected '<Class>/<video>.avi <1-based label>', got {line!r}"
            )
        label = _class_of(parts[0], classes, where, line)
        listed = int(parts[1])
        if listed != label + 1:
            listed_name = class_names[listed - 1] if 1 <= listed <= len(class_names) else "none"
            raise ValueError(
                f"{where}: label {listed} (class {listed_name!r}) disagrees with the folder "
                f"{class_names[label]!r} (index {label + 1} in classInd.txt): {line!r}"
            )
        splits["train"].append((parts[0].replace("\\", "/"), label))
    test_file = require_file(directory / f"testlist0{fold}.txt", f"UCF101 fold {fold} test list")
    for n, line in read_lines(test_file):
        parts = line.split()
        where = f"{test_file}:{n}"
        # some copies of the test lists carry a label too; it must then agree with the folder
        if len(parts) not in (1, 2) or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(f"{where}: expected '<Class>/<video>.avi', got {line!r}")
        label = _class_of(parts[0], classes, where, line)
        if len(parts) == 2 and int(parts[1]) != label + 1:
            raise ValueError(
                f"{where}: label {parts[1]} disagrees with the folder {class_names[label]!r} "
                f"(index {label + 1} in classInd.txt): {line!r}"
            )
        splits["test"].append((parts[0].replace("\\", "/"), label))
    return class_names, splits


class UCF101DataModule(VideoDataModule):
    """UCF101 with its official three-fold train/test protocol.

    UCF101 has no official validation split. By default validation runs on the fold's test list
    (what the papers report: accuracy on split 1's test list, or the mean over three folds).
    ``val_fraction`` instead carves a stratified validation set from the train list (per class,
    seeded, deterministic), leaving the test list for the final evaluation. Note that UCF101's
    videos come in groups (``g01``–``g25``) cut from the same longer recording; a random carve
    puts clips of one group on both sides, so such a validation score is optimistic.

    Args:
        root: folder with one sub-folder of ``.avi`` videos per class (``UCF-101``).
        annotation_dir: folder with ``classInd.txt``, ``trainlist0{1,2,3}.txt`` and
            ``testlist0{1,2,3}.txt`` (default ``<root>/ucfTrainTestlist``).
        fold: official split, 1, 2 or 3.
        val_fraction: ``None`` (validate on the test list) or the fraction of each class's train
            videos held out for validation, in ``(0, 1)``.
        seed: seed of the ``val_fraction`` split.
        **kwargs: :class:`~lowres_har.data.datamodules.VideoDataModule` arguments.
    """

    def __init__(
        self,
        root: str,
        annotation_dir: str | None = None,
        fold: int = 1,
        val_fraction: float | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = require_dir(root, "UCF101 root (one folder of .avi videos per class)")
        self.annotation_dir = (
            Path(annotation_dir).expanduser() if annotation_dir else self.root / UCF101_SPLIT_DIR
        )
        self.fold = fold
        self.val_fraction = (
            None
            if val_fraction is None
            else check_fraction("val_fraction", val_fraction, allow_zero=False)
        )
        self.seed = seed
        self.class_names, lists = parse_ucf101_fold(self.annotation_dir, fold)
        train, test = lists["train"], lists["test"]
        if not train:
            raise ValueError(f"{self.annotation_dir}: trainlist0{fold}.txt lists no video")
        if self.val_fraction is None:
            self._entries = {"train": train, "val": test, "test": test}
        else:
            parts = stratified_split(
                [label for _, label in train],
                {"val": self.val_fraction},
                seed=seed,
                keys=[rel for rel, _ in train],
            )
            self._entries = {
                "train": [train[i] for i in parts["train"]],
                "val": [train[i] for i in parts["val"]],
                "test": test,
            }

    def split_videos(self, split: str) -> list[VideoEntry]:
        """``(path, label)`` of the videos of ``split`` (``train``/``val``/``test``) in this fold."""
        if split not in self._entries:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        entries: list[VideoEntry] = [
            (str(self.root / rel), lab) for rel, lab in self._entries[split]
        ]
        what = f"UCF101 fold {self.fold} {split}"
        if split == "val" and self.val_fraction is None:
            what += " (test list)"
        return check_videos(entries, on_error=self.on_error, what=what)
