"""Write a tiny Kinetics in the official layout: annotation CSVs plus 10 s clips named
``<youtube_id>_<start:06d>_<end:06d>.mp4``, and Mini-Kinetics-200 id lists.

    <root>/annotations/train.csv     label,youtube_id,time_start,time_end,split,is_cc
    <root>/annotations/validate.csv  label,youtube_id,time_start,time_end,split
    <root>/annotations/test.csv      label,youtube_id,time_start,time_end,split
    <root>/annotations/train_ytid_list.txt, val_ytid_list.txt   (Mini-Kinetics-200)
    <root>/train/<clip>.mp4          flat, as the CVDF archives unpack
    <root>/val/<label>/<clip>.mp4    one folder per class, as the ActivityNet crawler writes
    <root>/test/<clip>.mp4

Three classes (two with spaces in their names; ``tai chi`` is quoted in the CSVs), 3 train, 2 val
and 2 test clips per class. The Mini-200 lists keep only ``abseiling`` and ``playing guitar``
(3 + 2 train ids, 2 + 2 val ids). Each clip (12 frames of 32×40) shows a bright square moving in
a class-specific direction over a noisy background.

    python tests/data/kinetics/make_fixture.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lowres_har.data.io import write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blob import blob_clip  # noqa: E402  (tests/data/blob.py)

CLASSES = ("abseiling", "playing guitar", "tai chi")
PER_SPLIT = {"train": 3, "val": 2, "test": 2}
CSV_NAMES = {"train": "train.csv", "val": "validate.csv", "test": "test.csv"}
MINI_CLASSES = {"abseiling": 3, "playing guitar": 2}  # class → train ids kept in the Mini lists
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def _csv_label(name: str) -> str:
    return f'"{name}"' if name == "tai chi" else name


def make_fixture(root: Path) -> Path:
    """Write the dataset under ``root`` and return ``root``."""
    root = Path(root)
    annotations = root / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(400)
    mini: dict[str, list[str]] = {"train": [], "val": []}
    for split, per_class in PER_SPLIT.items():
        header = "label,youtube_id,time_start,time_end,split" + (
            ",is_cc" if split == "train" else ""
        )
        rows = [header]
        for label, name in enumerate(CLASSES):
            for i in range(per_class):
                ytid = "".join(rng.choice(list(_ID_CHARS), size=11))
                start = int(rng.integers(0, 300))
                end = start + 10
                row = f"{_csv_label(name)},{ytid},{start},{end},{split}"
                rows.append(row + (f",{i % 2}" if split == "train" else ""))
                clip = f"{ytid}_{start:06d}_{end:06d}.mp4"
                folder = root / split / name if split == "val" else root / split
                frames = blob_clip(np.random.default_rng([label, i, len(split)]), label)
                write_video(folder / clip, frames)
                if split in mini and i < MINI_CLASSES.get(name, 0):
                    mini[split].append(ytid)
        (annotations / CSV_NAMES[split]).write_text("\n".join(rows) + "\n")
    for split, ids in mini.items():
        (annotations / f"{split}_ytid_list.txt").write_text("\n".join(ids) + "\n")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_fixture.py OUT_DIR")
    print(make_fixture(Path(sys.argv[1])))
