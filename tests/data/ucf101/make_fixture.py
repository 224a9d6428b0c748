"""Write a tiny UCF101 in the official layout: ``<Class>/v_<Class>_gXX_cYY.avi`` clips plus
``ucfTrainTestlist/{classInd.txt, trainlist0{1,2,3}.txt, testlist0{1,2,3}.txt}``.

Three classes, one clip in each of the groups ``g01``–``g06`` per class. Like the real splits, a
fold tests whole groups: fold 1 tests g01–g02, fold 2 g03–g04, fold 3 g05–g06 (2 test and 4 train
clips per class). The lists use Windows line ends as the real files do, and
``HandstandPushups`` keeps the real dataset's spelling quirk: its folder and the lists say
``HandstandPushups`` but the file names say ``v_HandStandPushups_...``. Each clip (12 frames of
32×40) shows a bright square moving in a class-specific direction over a noisy background.

    python tests/data/ucf101/make_fixture.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lowres_har.data.io import write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blob import blob_clip  # noqa: E402  (tests/data/blob.py)

CLASSES = ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
#: Class name as it appears inside the video file names.
FILE_CLASS = {"HandstandPushups": "HandStandPushups"}
GROUPS = range(1, 7)
TEST_GROUPS = {1: (1, 2), 2: (3, 4), 3: (5, 6)}


def relative_path(class_name: str, group: int, clip: int = 1) -> str:
    """``<Class>/v_<Class>_g<group:02d>_c<clip:02d>.avi`` as the lists write it."""
    stem = FILE_CLASS.get(class_name, class_name)
    return f"{class_name}/v_{stem}_g{group:02d}_c{clip:02d}.avi"


def make_fixture(root: Path) -> Path:
    """Write the dataset under ``root`` (the ``UCF-101`` folder) and return ``root``."""
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    for label, name in enumerate(CLASSES):
        for group in GROUPS:
            rng = np.random.default_rng([label, group])
            write_video(root / relative_path(name, group), blob_clip(rng, label), codec="mpeg4")
    crlf = "\r\n"
    (lists / "classInd.txt").write_bytes(
        "".join(f"{i} {name}{crlf}" for i, name in enumerate(CLASSES, 1)).encode()
    )
    for fold, tested in TEST_GROUPS.items():
        train, test = [], []
        for label, name in enumerate(CLASSES):
            for group in GROUPS:
                if group in tested:
                    test.append(f"{relative_path(name, group)}{crlf}")
                else:
                    train.append(f"{relative_path(name, group)} {label + 1}{crlf}")
        (lists / f"trainlist0{fold}.txt").write_bytes("".join(train).encode())
        (lists / f"testlist0{fold}.txt").write_bytes("".join(test).encode())
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_fixture.py OUT_DIR")
    print(make_fixture(Path(sys.argv[1])))
