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

CLASSES = ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
#: Class name as it appears inside the video file names.
FILE_CLASS = {"HandstandPushups": "HandStandPushups"}
GROUPS = range(1, 7)
TEST_GROUPS = {1: (1, 2), 2: (3, 4), 3: (5, 6)}
FRAMES, HEIGHT, WIDTH = 12, 32, 40
_DIRECTIONS = ((0.0, 1.6), (1.4, 0.0), (-1.1, -1.1), (1.1, -1.2))  # (dy, dx) per frame


def blob_clip(rng: np.random.Generator, label: int) -> np.ndarray:
    """uint8 ``(FRAMES, HEIGHT, WIDTH, 3)``: a 7×7 square moving in the class's direction."""
    frames = rng.integers(20, 60, size=(FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    dy, dx = _DIRECTIONS[label % len(_DIRECTIONS)]
    y0 = HEIGHT / 2 - dy * FRAMES / 2 + rng.uniform(-3, 3)
    x0 = WIDTH / 2 - dx * FRAMES / 2 + rng.uniform(-3, 3)
    colour = np.array([220, 200 - 60 * label, 60 + 60 * label], dtype=np.uint8)
    for t in range(FRAMES):
        y = int(np.clip(round(y0 + dy * t), 0, HEIGHT - 7))
        x = int(np.clip(round(x0 + dx * t), 0, WIDTH - 7))
        frames[t, y : y + 7, x : x + 7] = colour
    return frames


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
