"""Write a tiny dataset in each of the three VideoFolder layouts.

    <root>/tree/<class>/...            (b) one class tree: 5 videos per class of 3 classes, in
                                           .mp4, .avi and .mkv files and one folder of .png
                                           frames per class; plus files that are not videos
    <root>/splits/{train,val,test}/<class>/<video>.mp4
                                       (a) split folders: 3 / 2 / 2 videos per class
    <root>/list.csv                    (c) "path,label,split" rows (header, paths relative to the
                                           CSV) over the videos of tree/
    <root>/list_nosplit.csv            (c) "path,label" rows without header or split column

Each video (12 frames of 32×40) shows a bright square moving in a class-specific direction over
a noisy background.

    python tests/data/video_folder/make_fixture.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from lowres_har.data.io import write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blob import blob_clip  # noqa: E402  (tests/data/blob.py)

CLASSES = ("jump", "run", "wave")
#: Videos per class in tree/: (name, kind); kind is a file suffix or "frames".
TREE_VIDEOS = (
    ("a", ".mp4"),
    ("b", ".mp4"),
    ("c", ".avi"),
    ("d", ".mkv"),
    ("e", "frames"),
)
SPLIT_COUNTS = {"train": 3, "val": 2, "test": 2}
#: Split of each tree/ video in list.csv.
CSV_SPLITS = {"a": "train", "b": "train", "c": "train", "d": "val", "e": "test"}
_CODECS = {".mp4": "h264", ".avi": "mpeg4", ".mkv": "h264"}


def tree_path(class_name: str, name: str, kind: str) -> str:
    """Path of a tree/ video relative to the fixture root."""
    suffix = "" if kind == "frames" else kind
    return f"tree/{class_name}/{class_name}_{name}{suffix}"


def _write_frames(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, img in enumerate(frames):
        cv2.imwrite(str(folder / f"img_{t + 1:05d}.png"), img[:, :, ::-1])


def make_fixture(root: Path) -> Path:
    """Write the three layouts under ``root`` and return ``root``."""
    root = Path(root)
    rows, plain = ["path,label,split"], []
    for label, cls in enumerate(CLASSES):
        for i, (name, kind) in enumerate(TREE_VIDEOS):
            frames = blob_clip(np.random.default_rng([label, i, 0]), label)
            rel = tree_path(cls, name, kind)
            if kind == "frames":
                _write_frames(root / rel, frames)
            else:
                write_video(root / rel, frames, codec=_CODECS[kind])
            rows.append(f"{rel},{cls},{CSV_SPLITS[name]}")
            plain.append(f"{rel},{cls}")
        (root / "tree" / cls / "Thumbs.db").write_bytes(b"\0")  # not a video: ignored
        for s, (split, count) in enumerate(SPLIT_COUNTS.items(), 1):
            for i in range(count):
                frames = blob_clip(np.random.default_rng([label, i, s]), label)
                write_video(root / "splits" / split / cls / f"{cls}_{split}_{i}.mp4", frames)
    (root / "tree" / "README.txt").write_text("not a class folder\n")
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    (root / "list_nosplit.csv").write_text("\n".join(plain) + "\n")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_fixture.py OUT_DIR")
    print(make_fixture(Path(sys.argv[1])))
