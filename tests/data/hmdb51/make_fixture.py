"""Write a tiny HMDB51 in the official layout: class folders of ``.avi`` clips plus
``testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt``.

Three classes (one with an underscore in its name, as many HMDB51 classes have), seven clips per
class; in every fold each class has 4 train (id 1), 2 test (id 2) and 1 unused (id 0) clip, a
different pair tested in each fold (:data:`FOLD_ROLES`). Every line ends with a space, like the
real files.
Each clip (12 frames of 32×40) shows a bright square moving in a class-specific direction over a
noisy background, so a model can learn the classes.

    python tests/data/hmdb51/make_fixture.py OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from lowres_har.data.io import write_video

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blob import blob_clip  # noqa: E402  (tests/data/blob.py)

CLASSES = ("brush_hair", "climb_stairs", "wave")
VIDEOS_PER_CLASS = 7
#: Per fold: clip index → split id (1 train, 2 test, 0 unused). 4 train, 2 test, 1 unused.
FOLD_ROLES = {
    1: {0: 2, 1: 2, 2: 0, 3: 1, 4: 1, 5: 1, 6: 1},
    2: {0: 1, 1: 1, 2: 2, 3: 2, 4: 0, 5: 1, 6: 1},
    3: {0: 1, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2, 6: 1},
}


def video_name(class_name: str, i: int) -> str:
    """An HMDB51-style file name (movie title, class, visibility/camera/quality tags, index)."""
    title = "[Fixture_Movie]" if i == 0 else f"Clip{i:02d}"
    return f"{title}_{class_name}_u_cm_np1_fr_med_{i}.avi"


def make_fixture(root: Path) -> Path:
    """Write the dataset under ``root`` and return ``root``."""
    root = Path(root)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    for label, name in enumerate(CLASSES):
        for i in range(VIDEOS_PER_CLASS):
            rng = np.random.default_rng([label, i])
            write_video(root / name / video_name(name, i), blob_clip(rng, label), codec="mpeg4")
        for fold, roles in FOLD_ROLES.items():
            lines = [f"{video_name(name, i)} {roles[i]} \n" for i in range(VIDEOS_PER_CLASS)]
            (splits / f"{name}_test_split{fold}.txt").write_text("".join(lines))
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_fixture.py OUT_DIR")
    print(make_fixture(Path(sys.argv[1])))
