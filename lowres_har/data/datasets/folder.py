"""VideoFolder: any dataset laid out as one folder per class, or listed in a CSV.

Three ways to say where the videos and splits are:

(a) split folders: ``<root>/train/<class>/<video>``, ``<root>/val/...``, ``<root>/test/...``;
(b) one class tree ``<root>/<class>/<video>``, split by stratified, seeded fractions;
(c) a CSV of ``path,label[,split]`` rows (paths relative to the CSV or absolute, header optional).

A video is a file with one of the accepted extensions, or a sub-folder of image frames
(``.jpg``/``.jpeg``/``.png``/``.bmp``) inside a class folder: one video per sub-folder, frames in
natural name order (``img2`` before ``img10``), as :func:`lowres_har.data.io.read_video` reads them.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lowres_har.data.datamodules import VideoDataModule
from lowres_har.data.datasets.base import VideoEntry, check_videos
from lowres_har.data.datasets.splits import (
    check_fraction,
    require_dir,
    require_file,
    stratified_split,
)
from lowres_har.data.io import IMAGE_SUFFIXES

__all__ = [
    "FRAME_EXTENSIONS",
    "SPLITS",
    "VIDEO_EXTENSIONS",
    "VideoFolderDataModule",
    "assign_splits",
    "is_frame_folder",
    "read_video_csv",
    "scan_class_tree",
    "sort_class_names",
]

log = logging.getLogger("lowres_har")

#: Video file extensions recognised by default (anything FFmpeg/PyAV decodes may be added).
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".avi",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ogv",
    ".flv",
    ".wmv",
    ".3gp",
    ".ts",
)
#: Image extensions that make a sub-folder a folder-of-frames video (those the reader decodes).
FRAME_EXTENSIONS: tuple[str, ...] = IMAGE_SUFFIXES
#: The split names.
SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


def _norm_extensions(extensions: Sequence[str] | None) -> tuple[str, ...]:
    if extensions is None:
        return VIDEO_EXTENSIONS
    if isinstance(extensions, str):
        extensions = [extensions]
    out = tuple(("." + e.lstrip(".")).lower() for e in extensions)
    if not out:
        raise ValueError("extensions must name at least one file extension")
    return out


def is_frame_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding at least one image frame (:data:`FRAME_EXTENSIONS`)."""
    p = Path(path)
    return p.is_dir() and any(
        f.suffix.lower() in FRAME_EXTENSIONS and f.is_file() for f in p.iterdir()
    )


def sort_class_names(names: set[str] | Sequence[str]) -> list[str]:
    """Class names in label order: sorted; numerically when every name is an integer."""
    unique = set(names)
    if unique and all(n.strip().lstrip("-").isdigit() for n in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def scan_class_tree(
    root: str | Path, extensions: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """Find the videos of a ``<root>/<class>/<video>`` tree.

    Each non-hidden sub-folder of ``root`` is a class. Inside it, every file with an accepted
    extension is a video, and so is every sub-folder holding image frames. Other
    files are ignored (counted in an info log line); sub-folders without frames and video files
    directly in ``root`` are ignored with a warning.

    Args:
        root: the tree's root.
        extensions: accepted video extensions (default :data:`VIDEO_EXTENSIONS`), with or
            without the dot, case-insensitive.

    Returns:
        ``(path, class_name)`` per video, sorted by path.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: ``root`` has no class folders, or a class folder holds no video.
    """
    base = require_dir(root, "video folder root")
    exts = _norm_extensions(extensions)
    found: list[tuple[str, str]] = []
    ignored: list[Path] = []
    empty_dirs: list[Path] = []
    loose = [p for p in base.iterdir() if p.is_file() and p.suffix.lower() in exts]
    if loose:
        log.warning(
            "%s: %d video file(s) directly in the root are not in a class folder and are "
            "ignored (%s)",
            base,
            len(loose),
            ", ".join(p.name for p in sorted(loose)[:3]),
        )
    classes = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{base}: no class folders; expected <root>/<class>/<video files>")
    for class_dir in classes:
        count = 0
        for item in sorted(class_dir.iterdir()):
            if item.name.startswith("."):
                continue
            if item.is_file() and item.suffix.lower() in exts:
                found.append((str(item), class_dir.name))
                count += 1
            elif item.is_dir():
                if is_frame_folder(item):
                    found.append((str(item), class_dir.name))
                    count += 1
                else:
                    empty_dirs.append(item)
            else:
                ignored.append(item)
        if count == 0:
            raise ValueError(
                f"{class_dir}: class folder holds no video (files ending in "
                f"{', '.join(exts)}, or sub-folders of image frames)"
            )
    if empty_dirs:
        log.warning(
            "%s: %d sub-folder(s) of class folders hold no image frames and are ignored (%s)",
            base,
            len(empty_dirs),
            ", ".join(str(p.relative_to(base)) for p in empty_dirs[:3]),
        )
    if ignored:
        log.info(
            "%s: ignored %d file(s) that are not videos (%s)",
            base,
            len(ignored),
            ", ".join(str(p.relative_to(base)) for p in ignored[:3]),
        )
    return found


def read_video_csv(path: str | Path) -> list[tuple[str, str, str | None]]:
    """Read a ``path,label[,split]`` CSV.

    A first row reading ``path,label[,split]`` is a header and skipped. Relative paths are
    resolved against the CSV's folder. ``split`` is ``train``, ``val`` (or ``valid``,
    ``validation``) or ``test``; either every row has one or none does.

    Returns:
        ``(absolute_path, label, split_or_None)`` per row, in file order.

    Raises:
        FileNotFoundError: the CSV is missing.
        ValueError: a row has the wrong number of columns, an empty path/label, an unknown split,
            or only some rows name a split (file and line number in the message).
    """
    p = require_file(path, "video list CSV")
    reader = csv.reader(io.StringIO(p.read_bytes().decode("utf-8-sig")))
    rows: list[tuple[str, str, str | None]] = []
    with_split: bool | None = None
    first = True
    for row in reader:
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        where = f"{p}:{reader.line_num}"
        if first and [c.lower() for c in cells[:2]] == ["path", "label"]:
            first = False
            continue
        first = False
        if len(cells) not in (2, 3):
            raise ValueError(f"{where}: expected 'path,label[,split]', got {row}")
        rel, label = cells[0], cells[1]
        if not rel or not label:
            raise ValueError(f"{where}: empty path or label in {row}")
        split: str | None = None
        if len(cells) == 3 and cells[2]:
            split = _SPLIT_ALIASES.get(cells[2].lower())
            if split is None:
                raise ValueError(f"{where}: split must be train, val or test, got {cells[2]!r}")
        if with_split is None:
            with_split = split is not None
        elif with_split != (split is not None):
            raise ValueError(
                f"{where}: either every row names a split or none does ({row} differs from the "
                "rows above)"
            )
        video = Path(rel).expanduser()
        if not video.is_absolute():
            video = p.parent / video
        rows.append((str(video), label, split))
    if not rows:
        raise ValueError(f"{p}: no rows; expected 'path,label[,split]' lines")
    return rows


def assign_splits(
    items: Sequence[tuple[str, int]],
    given: dict[str, list[tuple[str, int]]] | None,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    what: str = "dataset",
) -> dict[str, list[tuple[str, int]]]:
    """Decide the train/val/test lists of a VideoFolder dataset.

    With ``given`` splits (split folders or a CSV ``split`` column): ``train`` is required; a
    missing ``val`` is carved from train by ``val_fraction`` (stratified, seeded); a missing
    ``test`` is the val split. Without: ``items`` is split per class by ``val_fraction`` and
    ``test_fraction``; a zero fraction makes that split reuse the other one.

    Args:
        items: ``(path, label)`` of every video (used when ``given`` is ``None``).
        given: ``{split: [(path, label)]}`` from the layout, or ``None``.
        val_fraction: fraction of each class held out for validation.
        test_fraction: fraction of each class held out for testing.
        seed: split seed.
        what: dataset description for messages.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``.
    """

    def carve(pool: list[tuple[str, int]], fractions: dict[str, float]) -> dict[str, list]:
        parts = stratified_split(
            [lab for _, lab in pool], fractions, seed=seed, keys=[p for p, _ in pool]
        )
        return {name: [pool[i] for i in idx] for name, idx in parts.items()}

    if given is not None:
        out = {k: list(v) for k, v in given.items() if v}
        if "train" not in out:
            raise ValueError(f"{what}: no training videos (a 'train' split is required)")
        if "val" not in out:
            if val_fraction <= 0:
                raise ValueError(f"{what}: no 'val' split and val_fraction is 0")
            parts = carve(out["train"], {"val": val_fraction})
            out["train"], out["val"] = parts["train"], parts["val"]
            log.info("%s: no val split given; carved %d videos from train", what, len(out["val"]))
        if "test" not in out:
            log.info("%s: no test split given; testing on the val split", what)
            out["test"] = out["val"]
        return out
    fractions = {k: f for k, f in (("val", val_fraction), ("test", test_fraction)) if f > 0}
    if not fractions:
        raise ValueError(
            f"{what}: val_fraction and test_fraction are both 0; nothing to validate on"
        )
    parts = carve(list(items), fractions)
    if "val" not in parts:
        parts["val"] = parts["test"]
    if "test" not in parts:
        parts["test"] = parts["val"]
    return parts


class VideoFolderDataModule(VideoDataModule):
    """A dataset of your own: class folders (with or without split folders) or a CSV list.

    Layouts, in order of precedence:

    - ``csv`` given: rows ``path,label[,split]`` (header optional; relative paths against the
      CSV's folder). Without a split column the rows are split by the fractions.
    - ``<root>/train`` exists: ``<root>/{train,val,test}/<class>/<video>``. A missing ``val`` is
      carved from train by ``val_fraction``; a missing ``test`` reuses val.
    - otherwise ``<root>/<class>/<video>``, split per class by ``val_fraction`` and
      ``test_fraction`` (seeded, deterministic, independent of file system order).

    Class names are sorted (numerically when all are integers); with split folders they come
    from ``train``, and a val/test class folder not in train is an error.

    Args:
        root: dataset folder (layouts a and b).
        csv: a ``path,label[,split]`` CSV (layout c); give either ``root`` or ``csv``.
        extensions: accepted video file extensions (default :data:`VIDEO_EXTENSIONS`);
            folders of image frames always count as videos.
        val_fraction: fraction of each class held out for validation, in ``[0, 1)``.
        test_fraction: fraction of each class held out for testing, in ``[0, 1)``.
        seed: split seed.
        **kwargs: :class:`~lowres_har.data.datamodules.VideoDataModule` arguments.
    """

    def __init__(
        self,
        root: str | None = None,
        csv: str | None = None,
        extensions: list[str] | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (root is None) == (csv is None):
            raise ValueError("give exactly one of root (a class folder tree) or csv (a list)")
        self.root = Path(root).expanduser() if root is not None else None
        self.csv = Path(csv).expanduser() if csv is not None else None
        self.extensions = _norm_extensions(extensions)
        self.val_fraction = check_fraction("val_fraction", val_fraction)
        self.test_fraction = check_fraction("test_fraction", test_fraction)
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must be below 1, got {val_fraction} + "
                f"{test_fraction}"
            )
        self.seed = seed
        source = self.csv if self.csv is not None else self.root
        self._what = f"VideoFolder {source}"
        labelled, given = self._discover()
        self.class_names = sort_class_names({lab for _, lab in labelled})
        classes = {name: i for i, name in enumerate(self.class_names)}
        items = [(p, classes[lab]) for p, lab in labelled]
        given_idx = (
            {s: [(p, classes[lab]) for p, lab in v] for s, v in given.items()}
            if given is not None
            else None
        )
        self._entries = assign_splits(
            items,
            given_idx,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=seed,
            what=self._what,
        )

    @property
    def layout(self) -> str:
        """``"csv"``, ``"split_folders"`` or ``"class_tree"``."""
        return self._layout

    def _discover(
        self,
    ) -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]] | None]:
        """All ``(path, class_name)`` and, where the layout says, the given splits."""
        if self.csv is not None:
            self._layout = "csv"
            rows = read_video_csv(self.csv)
            labelled = [(p, lab) for p, lab, _ in rows]
            if rows[0][2] is None:
                return labelled, None
            given: dict[str, list[tuple[str, str]]] = {s: [] for s in SPLITS}
            for p, lab, split in rows:
                given[str(split)].append((p, lab))
            train_classes = {lab for _, lab in given["train"]}
            self._check_classes(given, train_classes, str(self.csv))
            return labelled, given
        assert self.root is not None
        root = require_dir(self.root, "VideoFolder root")
        present = [s for s in SPLITS if (root / s).is_dir()]
        if present and "train" not in present:
            raise FileNotFoundError(
                f"{root} has {'/'.join(present)} folder(s) but no train folder: expected "
                f"{root / 'train'}/<class>/<video> beside them"
            )
        if not present:
            self._layout = "class_tree"
            return scan_class_tree(root, self.extensions), None
        self._layout = "split_folders"
        given = {s: scan_class_tree(root / s, self.extensions) for s in present}
        train_classes = {lab for _, lab in given["train"]}
        self._check_classes(given, train_classes, str(root))
        labelled = [item for s in present for item in given[s]]
        return labelled, given

    @staticmethod
    def _check_classes(
        given: dict[str, list[tuple[str, str]]], train_classes: set[str], where: str
    ) -> None:
        for split, items in given.items():
            extra = sorted({lab for _, lab in items} - train_classes)
            if extra:
                raise ValueError(
                    f"{where}: {split} has class(es) with no training video: {', '.join(extra)}"
                )

    def split_videos(self, split: str) -> list[VideoEntry]:
        """``(path, label)`` of the videos of ``split`` (``train``/``val``/``test``)."""
        if split not in SPLITS:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        entries: list[VideoEntry] = list(self._entries[split])
        return check_videos(entries, on_error=self.on_error, what=f"{self._what} {split}")
