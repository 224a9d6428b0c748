"""Kinetics-400/600/700 (Kay et al. 2017; Carreira et al. 2018, 2019) and Mini-Kinetics-200
(Xie et al., ECCV 2018).

The official annotations are CSV files ``train.csv``, ``validate.csv`` and ``test.csv`` with the
columns ``label,youtube_id,time_start,time_end,split`` (some releases add ``is_cc``; extra columns
are ignored, and the test CSV of some releases has no ``label``). Each row is a 10 s clip of a
YouTube video, stored by the download tools as ``<youtube_id>_<start:06d>_<end:06d>.mp4``::

    <root>/annotations/train.csv validate.csv test.csv
    <root>/train/<youtube_id>_<start>_<end>.mp4 ...        flat, or
    <root>/train/<label>/<youtube_id>_<start>_<end>.mp4 ... in one folder per class
    <root>/val/...   <root>/test/...

Mini-Kinetics-200 is the Kinetics-400 subset listed by ``train_ytid_list.txt`` and
``val_ytid_list.txt`` (one YouTube id per line).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lowres_har.data.datamodules import VideoDataModule
from lowres_har.data.datasets.base import VideoEntry, check_videos
from lowres_har.data.datasets.splits import read_lines, require_dir, require_file

__all__ = [
    "KINETICS_VARIANTS",
    "KineticsClip",
    "KineticsDataModule",
    "find_kinetics_csv",
    "index_clip_files",
    "kinetics_class_names",
    "read_class_list",
    "read_kinetics_csv",
    "read_ytid_list",
]

log = logging.getLogger("lowres_har")

#: Variant name → number of classes of the official release.
KINETICS_VARIANTS: dict[str, int] = {"400": 400, "600": 600, "700": 700, "mini200": 200}

#: Annotation file names tried per split, in order (official names first).
_CSV_NAMES = {
    "train": ("train.csv", "kinetics-{v}_train.csv", "kinetics_{v}_train.csv"),
    "val": ("validate.csv", "val.csv", "kinetics-{v}_val.csv", "kinetics_{v}_val.csv"),
    "test": ("test.csv", "kinetics-{v}_test.csv", "kinetics_{v}_test.csv"),
}
#: Video folder names tried per split (relative to the root), in order.
_SPLIT_DIRS = {
    "train": ("train",),
    "val": ("val", "validate", "valid", "validation"),
    "test": ("test",),
}
_MISSING_HINT = (
    " (clips of deleted or private YouTube videos are missing from every Kinetics download)"
)


@dataclass(frozen=True)
class KineticsClip:
    """One row of a Kinetics annotation CSV.

    Attributes:
        youtube_id: the 11-character YouTube id.
        time_start: clip start in seconds.
        time_end: clip end in seconds.
        label: class name (``None`` for unlabelled test rows).
    """

    youtube_id: str
    time_start: int
    time_end: int
    label: str | None

    @property
    def stem(self) -> str:
        """File name without extension: ``<youtube_id>_<start:06d>_<end:06d>``."""
        return f"{self.youtube_id}_{self.time_start:06d}_{self.time_end:06d}"


def _seconds(value: str, where: str, column: str) -> int:
    try:
        seconds = float(value)
    except ValueError as err:
        raise ValueError(f"{where}: {column} must be a number of seconds, got {value!r}") from err
    if seconds < 0 or seconds != seconds or seconds != int(seconds):
        raise ValueError(f"{where}: {column} must be a whole number of seconds, got {value!r}")
    return int(seconds)


def read_kinetics_csv(path: str | Path, *, need_label: bool = True) -> list[KineticsClip]:
    """Read a Kinetics annotation CSV (header row required, extra columns ignored).

    Args:
        path: ``train.csv``, ``validate.csv`` or ``test.csv`` of any Kinetics release.
        need_label: require a ``label`` column (``False`` reads unlabelled test CSVs, giving
            ``label=None``).

    Returns:
        The clips in file order.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a required column is missing, or a row is malformed (file and line number).
    """
    p = require_file(path, "Kinetics annotation CSV")
    text = p.read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    required = ["youtube_id", "time_start", "time_end"] + (["label"] if need_label else [])
    absent = [c for c in required if c not in header]
    if absent:
        hint = (
            " (this release's test labels are not public: use test_split: val)"
            if absent == ["label"]
            else ""
        )
        raise ValueError(
            f"{p}: missing column(s) {', '.join(absent)} in the header {header}; expected "
            f"label,youtube_id,time_start,time_end,split{hint}"
        )
    col = {name: header.index(name) for name in ("youtube_id", "time_start", "time_end")}
    label_col = header.index("label") if "label" in header else None
    clips: list[KineticsClip] = []
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue
        where = f"{p}:{reader.line_num}"
        if len(row) < len(header):
            raise ValueError(f"{where}: expected {len(header)} columns {header}, got {row}")
        youtube_id = row[col["youtube_id"]].strip()
        if not youtube_id:
            raise ValueError(f"{where}: empty youtube_id")
        label = row[label_col].strip() if label_col is not None else None
        if need_label and not label:
            raise ValueError(f"{where}: empty label")
        start = _seconds(row[col["time_start"]].strip(), where, "time_start")
        end = _seconds(row[col["time_end"]].strip(), where, "time_end")
        if end <= start:
            raise ValueError(f"{where}: time_end {end} is not after time_start {start}")
        clips.append(KineticsClip(youtube_id, start, end, label or None))
    return clips


def read_ytid_list(path: str | Path) -> list[str]:
    """YouTube ids of a Mini-Kinetics-200 list (``train_ytid_list.txt``/``val_ytid_list.txt``),
    one per line, in file order.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line holds more than one word (file and line number in the message).
    """
    p = require_file(path, "Mini-Kinetics-200 id list")
    ids: list[str] = []
    for n, line in read_lines(p):
        if len(line.split()) != 1:
            raise ValueError(f"{p}:{n}: expected one YouTube id per line, got {line!r}")
        ids.append(line)
    return ids


def read_class_list(path: str | Path) -> list[str]:
    """Class names from a text file, one per line, in file order (line ``i`` is label ``i``).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is empty or repeats a name.
    """
    p = require_file(path, "class list")
    names: list[str] = []
    for n, name in read_lines(p):
        if name in names:
            raise ValueError(f"{p}:{n}: class {name!r} appears twice")
        names.append(name)
    if not names:
        raise ValueError(f"{p}: no class names")
    return names


def kinetics_class_names(clips: list[KineticsClip]) -> list[str]:
    """Sorted unique labels of ``clips`` (the class order used for the integer labels)."""
    return sorted({c.label for c in clips if c.label is not None})


def find_kinetics_csv(annotation_dir: str | Path, split: str, variant: str = "400") -> Path:
    """The annotation CSV of ``split`` (``train``/``val``/``test``) in ``annotation_dir``.

    Tries the official names (``train.csv``, ``validate.csv``, ``test.csv``), then ``val.csv`` and
    the ActivityNet crawler's ``kinetics-<variant>_<split>.csv``.

    Raises:
        FileNotFoundError: none exists (the message lists the names tried).
    """
    directory = require_dir(
        annotation_dir,
        "Kinetics annotation folder (train.csv, validate.csv, test.csv; see annotation_dir)",
    )
    base = "400" if variant == "mini200" else variant
    names = [n.format(v=base) for n in _CSV_NAMES[split]]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"Kinetics {split} annotations not found: expected {directory / names[0]} "
        f"(also tried {', '.join(names[1:])})"
    )


def index_clip_files(split_dir: str | Path) -> dict[str, Path]:
    """Map file stems to the files of a Kinetics split folder.

    Looks at files directly in ``split_dir`` and one level down (one folder per class, whatever
    its name: the label as written, with underscores, ...). Stems are file names without the
    extension, e.g. ``abc123def45_000010_000020``. Where two files share a stem, the first in
    sorted order wins.

    Returns:
        ``{stem: path}``.
    """
    index: dict[str, Path] = {}

    def add(folder: str) -> list[str]:
        subdirs: list[str] = []
        with os.scandir(folder) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if entry.is_dir():
                    subdirs.append(entry.path)
                elif entry.is_file() and not entry.name.startswith("."):
                    index.setdefault(entry.name.rsplit(".", 1)[0], Path(entry.path))
        return subdirs

    for sub in add(str(split_dir)):
        add(sub)
    return index


def _normalise_variant(variant: str | int) -> str:
    v = str(variant).lower().replace("kinetics", "").strip("-_ ")
    v = {"mini": "mini200", "mini-200": "mini200", "200": "mini200"}.get(v, v)
    if v not in KINETICS_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(KINETICS_VARIANTS)}, got {variant!r}")
    return v


class KineticsDataModule(VideoDataModule):
    """Kinetics-400/600/700 and Mini-Kinetics-200 from the official annotation CSVs.

    Train on the ``train`` CSV, validate on the official ``validate`` CSV; test defaults to the
    ``validate`` CSV as well (what papers report as Kinetics accuracy; the test labels of most
    releases are not public), or to ``test.csv`` with ``test_split="test"``.

    Many clips are missing from any download (deleted YouTube videos); the default
    ``on_error="raise"`` stops with a count of them, ``on_error="skip"`` trains without them and
    logs how many were left out.

    Args:
        root: dataset root (the split folders, and by default the annotations, live here).
        annotation_dir: folder of the CSVs (default ``<root>/annotations``).
        variant: ``"400"``, ``"600"``, ``"700"`` or ``"mini200"`` (the Kinetics-400 CSVs filtered
            by the Mini-Kinetics-200 id lists).
        subset_dir: folder of ``train_ytid_list.txt`` and ``val_ytid_list.txt`` (``mini200``;
            default ``annotation_dir``).
        path_format: where a clip's file is, relative to ``root``, as a :meth:`str.format`
            pattern with the fields ``split`` (the split's folder name), ``label``,
            ``youtube_id``, ``time_start`` and ``time_end`` (ints), e.g.
            ``"{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"``. Default: find
            ``<youtube_id>_<start:06d>_<end:06d>.*`` (or ``<youtube_id>.*``) in the split folder,
            flat or in per-class sub-folders.
        split_dirs: folder (relative to ``root``) per split, e.g. ``{train: videos_train, val:
            videos_val}``; default the first existing of ``train``; ``val``/``validate``/
            ``valid``/``validation``; ``test``.
        class_list: text file of class names, one per line, whose order defines the labels
            (default: the sorted labels of the train CSV, or of the Mini-200 lists).
        test_split: ``"val"`` (test on the validate CSV) or ``"test"`` (``test.csv``, which needs
            labels).
        **kwargs: :class:`~lowres_har.data.datamodules.VideoDataModule` arguments.
    """

    def __init__(
        self,
        root: str,
        annotation_dir: str | None = None,
        variant: str | int = "400",
        subset_dir: str | None = None,
        path_format: str | None = None,
        split_dirs: dict[str, str] | None = None,
        class_list: str | None = None,
        test_split: str = "val",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = require_dir(root, "Kinetics root")
        self.annotation_dir = (
            Path(annotation_dir).expanduser() if annotation_dir else self.root / "annotations"
        )
        self.variant = _normalise_variant(variant)
        self.name = "Mini-Kinetics-200" if self.variant == "mini200" else f"Kinetics-{self.variant}"
        if test_split not in ("val", "test"):
            raise ValueError(f"test_split must be 'val' or 'test', got {test_split!r}")
        if test_split == "test" and self.variant == "mini200":
            raise ValueError("Mini-Kinetics-200 has no test list: use test_split: val")
        self.test_split = test_split
        self.split_dirs = dict(split_dirs or {})
        unknown = set(self.split_dirs) - set(_SPLIT_DIRS)
        if unknown:
            raise ValueError(f"split_dirs keys must be train/val/test, got {sorted(unknown)}")
        self.path_format = path_format
        if path_format is not None:
            self._check_format(path_format)
        self.subset_dir = Path(subset_dir).expanduser() if subset_dir else self.annotation_dir
        self._clips: dict[str, list[KineticsClip]] = {}
        self._indexes: dict[Path, dict[str, Path]] = {}
        if self.variant == "mini200":
            train = self._annotations("train")
            val = self._annotations("val")
            derived = kinetics_class_names(train + val)
        else:
            derived = kinetics_class_names(self._annotations("train"))
        self.class_names = read_class_list(class_list) if class_list else derived
        expected = KINETICS_VARIANTS[self.variant]
        if len(derived) != expected:
            log.warning(
                "%s: the annotations in %s name %d classes, not %d: check annotation_dir "
                "and variant",
                self.name,
                self.annotation_dir,
                len(derived),
                expected,
            )

    @staticmethod
    def _check_format(path_format: str) -> None:
        try:
            path_format.format(split="train", label="x", youtube_id="x", time_start=0, time_end=10)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"path_format {path_format!r} is invalid ({err!r}); its fields are {{split}}, "
                "{label}, {youtube_id}, {time_start} and {time_end}"
            ) from err

    def _annotations(self, split: str) -> list[KineticsClip]:
        """The clips of ``split``, filtered by the Mini-200 lists for that variant."""
        if split in self._clips:
            return self._clips[split]
        path = find_kinetics_csv(self.annotation_dir, split, self.variant)
        clips = read_kinetics_csv(path)
        if self.variant == "mini200":
            clips = self._mini_subset(clips, split, path)
        self._clips[split] = clips
        return clips

    def _mini_subset(
        self, clips: list[KineticsClip], split: str, csv_path: Path
    ) -> list[KineticsClip]:
        list_path = self.subset_dir / f"{split}_ytid_list.txt"
        ids = read_ytid_list(list_path)
        by_id: dict[str, KineticsClip] = {}
        for clip in clips:
            by_id.setdefault(clip.youtube_id, clip)
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            msg = f"{list_path}: {len(unknown)} of {len(ids)} ids are not in {csv_path} ({shown})"
            if self.on_error == "raise":
                raise ValueError(msg + "; set on_error: skip to leave them out")
            log.warning("%s; left out (on_error: skip)", msg)
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def _split_dir(self, split: str) -> tuple[str, Path | None]:
        """The split's folder name and path (``None`` when no candidate exists)."""
        names = (self.split_dirs[split],) if split in self.split_dirs else _SPLIT_DIRS[split]
        for name in names:
            if (self.root / name).is_dir():
                return name, self.root / name
        return names[0], None

    def _entries(self, split: str) -> tuple[str, list[VideoEntry]]:
        source = self.test_split if split == "test" else split
        clips = self._annotations(source)
        classes = {name: i for i, name in enumerate(self.class_names)}
        unknown = sorted({c.label for c in clips if c.label not in classes}, key=str)
        if unknown:
            raise ValueError(
                f"{self.name} {source} annotations name {len(unknown)} class(es) that are not "
                f"among the {len(classes)} classes: {', '.join(map(str, unknown[:10]))}"
            )
        folder_name, folder = self._split_dir(source)
        entries: list[VideoEntry] = []
        if self.path_format is not None:
            for c in clips:
                rel = self.path_format.format(
                    split=folder_name,
                    label=c.label,
                    youtube_id=c.youtube_id,
                    time_start=c.time_start,
                    time_end=c.time_end,
                )
                entries.append((str(self.root / rel), classes[str(c.label)]))
            return source, entries
        if folder is None:
            names = (self.split_dirs[source],) if source in self.split_dirs else _SPLIT_DIRS[source]
            raise FileNotFoundError(
                f"{self.name} {source} videos not found: expected a folder at "
                f"{self.root / names[0]}"
                + (f" (also tried {', '.join(names[1:])})" if len(names) > 1 else "")
                + "; set split_dirs or path_format for another layout"
            )
        if folder not in self._indexes:
            self._indexes[folder] = index_clip_files(folder)
        index = self._indexes[folder]
        for c in clips:
            found = index.get(c.stem) or index.get(c.youtube_id)
            path = found if found is not None else folder / f"{c.stem}.mp4"
            entries.append((str(path), classes[str(c.label)]))
        return source, entries

    def split_videos(self, split: str) -> list[VideoEntry]:
        """``(path, label)`` of the clips of ``split`` (``train``/``val``/``test``); a missing
        clip is reported at its expected path ``<split folder>/<id>_<start>_<end>.mp4``."""
        if split not in _SPLIT_DIRS:
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        source, entries = self._entries(split)
        what = f"{self.name} {split}" + (f" ({source} annotations)" if source != split else "")
        try:
            return check_videos(entries, on_error=self.on_error, what=what)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err}{_MISSING_HINT}") from None
