"""TinyVIRAT-v2: naturally low-resolution, multi-label surveillance actions (26 classes).

The unpacked release (``TinyVIRAT_V2/``) holds::

    class_map.json              {"Opening": 0, ..., "Misc": 25}   class name -> index
    tiny_train_v2.json          [{"id", "video_id", "path", "dim": [T, H, W], "label": [names]}, ...]
    tiny_val_v2.json            same fields
    tiny_test_v2_public.json    same fields without "label"
    videos/train/<video_id>/<id>.mp4   ("path" is relative to videos/<split>/)
    videos/val/<video_id>/<id>.mp4
    videos/test/<id>.mp4

Labels become multi-hot float vectors of length ``len(class_map)`` in class-index order. Clips vary
in size (about 10×10 to 128×128 pixels) and length; frame counts always come from decoding, the
JSON ``dim`` is kept only as information.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lowres_har.data.datamodules import VideoDataModule
from lowres_har.data.datasets.base import VideoEntry, check_videos

__all__ = [
    "TINYVIRAT_CLASS_MAP",
    "TINYVIRAT_SPLIT_FILES",
    "TinyVIRATDataModule",
    "TinyVIRATRecord",
    "multi_hot",
    "read_class_map",
    "read_tinyvirat_json",
    "tinyvirat_entries",
]

log = logging.getLogger("lowres_har")

#: Annotation file of each official split (the test file has no labels).
TINYVIRAT_SPLIT_FILES: dict[str, str] = {
    "train": "tiny_train_v2.json",
    "val": "tiny_val_v2.json",
    "test": "tiny_test_v2_public.json",
}

#: Class name -> index file.
TINYVIRAT_CLASS_MAP = "class_map.json"


@dataclass(frozen=True)
class TinyVIRATRecord:
    """One entry of a TinyVIRAT-v2 split file.

    Attributes:
        id: the clip id (e.g. ``"00042"``); the challenge's ``answer.txt`` is keyed by it.
        video_id: the source surveillance video the clip was cut from.
        path: video file relative to ``videos/<split>/`` (POSIX separators).
        dim: ``(T, H, W)`` as written in the JSON (frames, rows, columns). Informational only:
            nothing checks it against the file, frame counts come from decoding.
        labels: class names present in the clip (empty for the unlabelled public test split).
    """

    id: str
    video_id: str
    path: str
    dim: tuple[int, int, int]
    labels: tuple[str, ...]


def read_class_map(path: str | Path) -> list[str]:
    """Class names ordered by their index in ``class_map.json``.

    Args:
        path: the ``class_map.json`` file (a JSON object ``{name: index}``).

    Returns:
        ``names`` with ``names[i]`` the class of index ``i``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not valid JSON, not an object of ``name: int`` pairs, or the
            indices are not exactly ``0 .. n-1``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: TinyVIRAT-v2 needs class_map.json (class name -> index) in its root"
        )
    data = _load_json(path)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path}: expected a non-empty JSON object {{class name: index}}")
    for name, index in data.items():
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"{path}: index of class {name!r} must be an integer, got {index!r}")
    indices = sorted(data.values())
    if indices != list(range(len(data))):
        raise ValueError(
            f"{path}: class indices must be 0..{len(data) - 1} without gaps or repeats, "
            f"got {indices}"
        )
    return sorted(data, key=lambda name: data[name])


def read_tinyvirat_json(path: str | Path, *, labelled: bool = True) -> list[TinyVIRATRecord]:
    """Parse one TinyVIRAT-v2 split file.

    Args:
        path: ``tiny_{train,val}_v2.json`` or ``tiny_test_v2_public.json``.
        labelled: require a ``label`` list in every entry (train/val). With ``False`` (the public
            test file) labels are not read.

    Returns:
        The records in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: invalid JSON, a missing or malformed field (the message names the entry's
            position and id), a path that leaves the split's video folder, or a repeated id or
            path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: TinyVIRAT-v2 split file missing")
    data = _load_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of clip entries, got {type(data).__name__}")
    records: list[TinyVIRATRecord] = []
    seen_ids: dict[str, int] = {}
    seen_paths: dict[str, int] = {}
    for n, entry in enumerate(data):
        where = f"{path}: entry {n}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
        if "id" in entry:
            where += f" (id {entry['id']!r})"
        keys = ("id", "video_id", "path", "dim") + (("label",) if labelled else ())
        missing = [k for k in keys if k not in entry]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        clip_id, video_id, rel = entry["id"], entry["video_id"], entry["path"]
        if isinstance(clip_id, bool) or not isinstance(clip_id, (str, int)):
            raise ValueError(f"{where}: id must be a string, got {clip_id!r}")
        if not isinstance(video_id, (str, int)) or isinstance(video_id, bool):
            raise ValueError(f"{where}: video_id must be a string, got {video_id!r}")
        rel_path = _relative_video_path(rel, where)
        dim = entry["dim"]
        if (
            not isinstance(dim, list)
            or len(dim) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dim)
        ):
            raise ValueError(f"{where}: dim must be three positive integers [T, H, W], got {dim!r}")
        labels: tuple[str, ...] = ()
        if labelled:
            raw = entry["label"]
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise ValueError(f"{where}: label must be a list of class names, got {raw!r}")
            labels = tuple(raw)
        key = str(clip_id)
        if key in seen_ids:
            raise ValueError(f"{where}: id {key!r} repeats entry {seen_ids[key]}")
        if rel_path in seen_paths:
            raise ValueError(f"{where}: path {rel_path!r} repeats entry {seen_paths[rel_path]}")
        seen_ids[key] = n
        seen_paths[rel_path] = n
        records.append(
            TinyVIRATRecord(
                id=key,
                video_id=str(video_id),
                path=rel_path,
                dim=(dim[0], dim[1], dim[2]),
                labels=labels,
            )
        )
    return records


def multi_hot(labels: Sequence[str], class_names: Sequence[str], *, where: str = "") -> list[float]:
    """Multi-hot vector of ``labels`` over ``class_names``.

    Args:
        labels: class names present (repeats allowed).
        class_names: every class, in index order.
        where: prefix for the error message (file and entry).

    Returns:
        ``len(class_names)`` floats, 1.0 where the class is present, else 0.0.

    Raises:
        ValueError: a label is not one of ``class_names``.
    """
    index = {name: i for i, name in enumerate(class_names)}
    vector = [0.0] * len(class_names)
    for name in labels:
        if name not in index:
            raise ValueError(
                f"{where + ': ' if where else ''}unknown class {name!r} "
                f"(class_map.json has {len(class_names)} classes)"
            )
        vector[index[name]] = 1.0
    return vector


def tinyvirat_entries(
    root: str | Path, split: str, class_names: Sequence[str]
) -> tuple[list[VideoEntry], list[str]]:
    """Split entries ``(video path, multi-hot label)`` and the clip ids, in file order.

    Args:
        root: the ``TinyVIRAT_V2`` folder.
        split: ``"train"``, ``"val"`` or ``"test"`` (the public test: all-zero labels).
        class_names: classes in index order (from :func:`read_class_map`).

    Returns:
        ``(entries, ids)`` of equal length; nothing checks that the videos exist.
    """
    if split not in TINYVIRAT_SPLIT_FILES:
        raise ValueError(f"split must be one of {tuple(TINYVIRAT_SPLIT_FILES)}, got {split!r}")
    root = Path(root)
    json_path = root / TINYVIRAT_SPLIT_FILES[split]
    labelled = split != "test"
    records = read_tinyvirat_json(json_path, labelled=labelled)
    video_dir = root / "videos" / split
    entries: list[VideoEntry] = []
    for n, rec in enumerate(records):
        label = multi_hot(rec.labels, class_names, where=f"{json_path}: entry {n} (id {rec.id!r})")
        entries.append((str(video_dir / rec.path), label))
    return entries, [rec.id for rec in records]


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from err


def _relative_video_path(rel: Any, where: str) -> str:
    if not isinstance(rel, str) or not rel.strip():
        raise ValueError(f"{where}: path must be a non-empty string, got {rel!r}")
    posix = PurePosixPath(rel.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts:
        raise ValueError(f"{where}: path {rel!r} must stay inside the split's video folder")
    return str(posix)


class TinyVIRATDataModule(VideoDataModule):
    """TinyVIRAT-v2 (Tirupattur et al., TinyAction Challenge 2021): 26 multi-label classes.

    Train on the official train split and validate on the official validation split. The public
    test split has no labels, so ``test`` evaluates on the validation split by default
    (``test_split="val"``). With ``test_split="test"`` the test/predict split is the public test
    set with all-zero label vectors (metrics on it are meaningless); use it with ``predict`` and
    :attr:`test_ids` to write the challenge's ``answer.txt``
    (:class:`~lowres_har.callbacks.TinyActionAnswerWriter`). ``predict`` runs on ``predict_split``
    (default ``"test"``) with ``eval_clips`` clips per video (or sliding windows with
    ``predict_windows``); every batch carries ``video_index``, the position of the clip's video in
    :meth:`video_ids` of that split.

    Train the task in multi-label mode (``VideoClassificationTask(multilabel=True)``, i.e.
    ``--model.multilabel=true``): labels are multi-hot float vectors ``(C,)``.

    Args:
        root: the unpacked ``TinyVIRAT_V2`` folder (``class_map.json``, the three JSON split files
            and ``videos/{train,val,test}/``).
        test_split: ``"val"`` (labelled, the default) or ``"test"`` (public, unlabelled).
        **kwargs: :class:`~lowres_har.data.datamodules.VideoDataModule` arguments.

    Attributes:
        multilabel: always ``True`` (labels are multi-hot).
    """

    multilabel: bool = True

    def __init__(self, root: str, test_split: str = "val", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if test_split not in ("val", "test"):
            raise ValueError(f"test_split must be 'val' or 'test', got {test_split!r}")
        self.root = Path(root).expanduser()
        self.test_split = test_split
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"TinyVIRAT-v2 root {self.root} not found: expected the unpacked TinyVIRAT_V2 "
                f"folder with {TINYVIRAT_CLASS_MAP}, {', '.join(TINYVIRAT_SPLIT_FILES.values())} "
                "and videos/"
            )
        self.class_names = read_class_map(self.root / TINYVIRAT_CLASS_MAP)
        self._ids: dict[str, list[str]] = {}
        self._all_ids: dict[str, list[str]] = {}

    def setup(self, stage: str | None = None) -> None:
        """Build the split datasets; refuses a task whose ``multilabel`` hyperparameter is off
        (it would treat the multi-hot vectors as soft single-label targets)."""
        module = getattr(getattr(self, "trainer", None), "lightning_module", None)
        hparams = getattr(module, "hparams", None) or {}
        if "multilabel" in hparams and not hparams["multilabel"]:
            raise ValueError(
                "TinyVIRAT-v2 is multi-label (multi-hot labels): set multilabel: true on the task "
                "(--model.multilabel=true)"
            )
        super().setup(stage)

    def source_split(self, split: str) -> str:
        """The official split that serves ``split`` (``test`` → ``val`` unless
        ``test_split="test"``)."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        return self.test_split if split == "test" else split

    def split_videos(self, split: str) -> list[VideoEntry]:
        source = self.source_split(split)
        entries, ids = tinyvirat_entries(self.root, source, self.class_names)
        if source == "test":
            log.info(
                "TinyVIRAT-v2 public test split: %d clips with all-zero labels (unlabelled); "
                "use predict and test_ids to write answer.txt, metrics are meaningless",
                len(entries),
            )
        what = f"TinyVIRAT-v2 {source}" + (f" (as {split})" if source != split else "")
        self._all_ids[split] = list(ids)
        kept = check_videos(entries, on_error=self.on_error, what=what)
        id_of = {entry[0]: clip_id for entry, clip_id in zip(entries, ids, strict=True)}
        self._ids[split] = [id_of[entry[0]] for entry in kept]
        return kept

    def video_ids(self, split: str) -> list[str]:
        """TinyVIRAT clip ids of ``split``'s videos, aligned with ``split_videos(split)`` (and
        ``dataset.videos`` and ``video_index``)."""
        if split not in self._ids:
            self.split_videos(split)
        return list(self._ids[split])

    def split_ids(self, split: str) -> list[str]:
        """Every clip id of ``split``'s JSON file in file order, including videos that
        ``on_error: skip`` dropped (the challenge's ``answer.txt`` needs a line for each)."""
        if split not in self._all_ids:
            self.split_videos(split)
        return list(self._all_ids[split])

    @property
    def test_ids(self) -> list[str]:
        """Clip ids of the test split in order (the public test ids with ``test_split="test"``);
        ``video_index`` ``i`` in test/predict batches is ``test_ids[i]``."""
        return self.video_ids("test")
