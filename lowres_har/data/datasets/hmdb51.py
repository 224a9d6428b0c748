"""HMDB51 (Kuehne et al., ICCV 2011): 51 action classes, 6,766 clips, three official 70/30 splits.

On-disk layout (the official ``hmdb51_org.rar`` and ``test_train_splits.rar`` unpacked)::

    <root>/brush_hair/<video>.avi ...            one folder per class
    <root>/testTrainMulti_7030_splits/brush_hair_test_split1.txt ... (51 classes × 3 folds)

Each split file lists every video of its class as ``<video>.avi <id>`` with id ``1`` = train,
``2`` = test and ``0`` = unused in that fold.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lowres_har.data.datamodules import VideoDataModule
from lowres_har.data.datasets.base import VideoEntry, check_videos
from lowres_har.data.datasets.splits import (
    check_fraction,
    read_lines,
    require_dir,
    stratified_split,
)

__all__ = [
    "HMDB51_SPLIT_DIR",
    "HMDB51DataModule",
    "hmdb51_class_names",
    "parse_hmdb51_fold",
]

log = logging.getLogger("lowres_har")

#: Folder of the official split files (from ``test_train_splits.rar``).
HMDB51_SPLIT_DIR = "testTrainMulti_7030_splits"
_SPLIT_IDS = {"0": "unused", "1": "train", "2": "test"}


def _check_fold(fold: int, folds: tuple[int, ...] = (1, 2, 3)) -> int:
    if fold not in folds:
        raise ValueError(f"fold must be one of {folds}, got {fold!r}")
    return int(fold)


def _fold_files(annotation_dir: str | Path, fold: int) -> dict[str, Path]:
    directory = require_dir(
        annotation_dir,
        "HMDB51 split folder (unpacked test_train_splits.rar; see annotation_dir)",
    )
    suffix = f"_test_split{_check_fold(fold)}.txt"
    files = {p.name[: -len(suffix)]: p for p in directory.iterdir() if p.name.endswith(suffix)}
    files.pop("", None)
    if not files:
        raise FileNotFoundError(
            f"no HMDB51 split files for fold {fold} in {directory}: expected files named "
            f"<class>{suffix} (e.g. brush_hair{suffix}) from test_train_splits.rar"
        )
    return files


def hmdb51_class_names(annotation_dir: str | Path, fold: int = 1) -> list[str]:
    """The class names of HMDB51: the prefixes of the fold's split files, sorted.

    ``brush_hair_test_split1.txt`` names the class ``brush_hair``; the 0-based position in the
    returned list is the integer label.

    Raises:
        FileNotFoundError: the folder or the fold's split files are missing.
    """
    return sorted(_fold_files(annotation_dir, fold))


def parse_hmdb51_fold(
    annotation_dir: str | Path, fold: int = 1
) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Read the 51 split files of one HMDB51 fold.

    Args:
        annotation_dir: the ``testTrainMulti_7030_splits`` folder.
        fold: 1, 2 or 3.

    Returns:
        ``(class_names, splits)``: ``splits`` maps ``"train"``, ``"test"`` and ``"unused"`` to
        lists of ``(relative_path, label)`` with ``relative_path = "<class>/<video>"`` (relative to
        the dataset root) and ``label`` the index into ``class_names``.

    Raises:
        FileNotFoundError: the folder or the fold's split files are missing.
        ValueError: a line is not ``<video> <0|1|2>`` (the message gives file and line number).
    """
    files = _fold_files(annotation_dir, fold)
    class_names = sorted(files)
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "test": [], "unused": []}
    for label, name in enumerate(class_names):
        for n, line in read_lines(files[name]):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in _SPLIT_IDS:
                raise ValueError(
                    f"{files[name]}:{n}: expected '<video> <0|1|2>' "
                    f"(1 train, 2 test, 0 unused), got {line!r}"
                )
            splits[_SPLIT_IDS[parts[1]]].append((f"{name}/{parts[0]}", label))
    return class_names, splits


class HMDB51DataModule(VideoDataModule):
    """HMDB51 with its official three-fold train/test protocol.

    HMDB51 has no official validation split. By default validation runs on the fold's test list,
    which is how the papers report HMDB51 (accuracy on the test list of split 1, or the mean of
    the three folds). ``val_fraction`` instead carves a stratified validation set from the train
    list (per class, seeded, the same on every run), leaving the test list untouched for a final
    evaluation.

    Args:
        root: folder with one sub-folder of ``.avi`` videos per class.
        annotation_dir: folder of the ``<class>_test_split{1,2,3}.txt`` files (default
            ``<root>/testTrainMulti_7030_splits``).
        fold: official split, 1, 2 or 3.
        val_fraction: ``None`` (validate on the test list) or the fraction of each class's train
            videos to hold out for validation, in ``(0, 1)``.
        seed: seed of the ``val_fraction`` split.
        include_unused: also train on the videos marked ``0`` (unused) in the fold, as
            Devarakonda et al. (two-stream ResNet-50 with SG3I) did; this departs from the
            official 70/30 protocol, so results are not comparable with it.
        **kwargs: :class:`~lowres_har.data.datamodules.VideoDataModule` arguments (batch_size,
            num_frames, views, on_error, ...).
    """

    def __init__(
        self,
        root: str,
        annotation_dir: str | None = None,
        fold: int = 1,
        val_fraction: float | None = None,
        seed: int = 0,
        include_unused: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = require_dir(root, "HMDB51 root (one folder of .avi videos per class)")
        self.annotation_dir = (
            Path(annotation_dir).expanduser() if annotation_dir else self.root / HMDB51_SPLIT_DIR
        )
        self.fold = _check_fold(fold)
        self.val_fraction = (
            None
            if val_fraction is None
            else check_fraction("val_fraction", val_fraction, allow_zero=False)
        )
        self.seed = seed
        self.include_unused = include_unused
        self.class_names, self._lists = parse_hmdb51_fold(self.annotation_dir, self.fold)
        self._entries = self._split_lists()

    def _split_lists(self) -> dict[str, list[tuple[str, int]]]:
        train, test = self._lists["train"], self._lists["test"]
        if self.include_unused:
            train = sorted(train + self._lists["unused"], key=lambda item: (item[1], item[0]))
        if not train:
            raise ValueError(f"{self.annotation_dir}: fold {self.fold} lists no training video")
        if self.val_fraction is None:
            return {"train": train, "val": test, "test": test}
        parts = stratified_split(
            [label for _, label in train],
            {"val": self.val_fraction},
            seed=self.seed,
            keys=[rel for rel, _ in train],
        )
        return {
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
        source = "test list" if split == "val" and self.val_fraction is None else ""
        what = f"HMDB51 fold {self.fold} {split}" + (f" ({source})" if source else "")
        return check_videos(entries, on_error=self.on_error, what=what)
