"""Write a tiny IXMAS in the INRIA layout (for tests).

``make_fixture(root)`` creates ``root/IXMAS`` with seven takes: ``alba1``, ``alba2``, ``amel1``,
``hedlena1``, ``julien1``, ``nicolas1`` and ``pao1`` (an actor the 11-action protocol leaves
out). Each take has ``<take>_png/cam0`` … ``cam4`` folders of 36×48 PNG frames
(``img0000.png`` …) and a ``<take>_truth.txt`` with one action id per frame. Every take performs
walk (7), wave (8), point (11, not in the 11-action protocol) and kick (10, right after point, with
no "nothing" frame between), separated by "nothing" (0) frames; run lengths vary from 6 to 9
frames. Each action moves a blob its own way (seen mirrored or shifted by the cameras), so the
classes are learnable. Deterministic (seeded).

Run ``python tests/data/ixmas/make_fixture.py OUT_DIR`` to write one by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

TAKES = ["alba1", "alba2", "amel1", "hedlena1", "julien1", "nicolas1", "pao1"]
#: (action id, run length range) in performance order; None is a "nothing" gap of 2-3 frames.
SCRIPT: list[int | None] = [None, 7, None, 8, None, 11, 10, None]
HEIGHT, WIDTH = 36, 48
CAMERAS = 5


def render_frame(action: int, phase: float, camera: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB ``(HEIGHT, WIDTH, 3)`` of one frame: camera-tinted background and an action
    blob (``action`` 0 draws a standing person-like bar only)."""
    tint = 60 + 15 * camera
    img = np.full((HEIGHT, WIDTH, 3), (tint, 90, 140 - tint // 2), np.uint8)
    img += rng.integers(0, 10, size=img.shape, dtype=np.uint8)
    cx = WIDTH // 2 + (camera - 2) * 3
    img[10:30, cx - 2 : cx + 2] = (200, 200, 200)  # the "person"
    sign = 1 if camera % 2 == 0 else -1
    if action == 7:  # walk: the blob crosses the frame
        x = int(WIDTH / 2 + sign * (phase - 0.5) * (WIDTH - 10))
        y = 24
    elif action == 8:  # wave: a blob above the head goes up and down
        x, y = cx + 4, int(8 + 5 * np.sin(2 * np.pi * 2 * phase))
    elif action == 10:  # kick: a low blob swings forward
        x, y = int(cx + sign * 14 * phase), int(30 - 6 * phase)
    elif action == 11:  # point: an arm held out
        x, y = cx + sign * 10, 16
    else:
        return img
    img[max(y - 3, 0) : y + 3, max(x - 3, 0) : x + 3] = (250, 60, 30)
    return img


def make_take(root: Path, name: str, rng: np.random.Generator) -> list[int]:
    """Write one take's frame folders and truth file; returns the per-frame labels."""
    labels: list[int] = []
    for action in SCRIPT:
        length = int(rng.integers(2, 4)) if action is None else int(rng.integers(6, 10))
        labels += [0 if action is None else action] * length
    for cam in range(CAMERAS):
        folder = root / f"{name}_png" / f"cam{cam}"
        folder.mkdir(parents=True, exist_ok=True)
        cam_rng = np.random.default_rng([TAKES.index(name), cam])
        run_start = 0
        for i, action in enumerate(labels):
            if i == 0 or labels[i - 1] != action:
                run_start = i
            run_end = run_start
            while run_end < len(labels) and labels[run_end] == action:
                run_end += 1
            phase = (i - run_start) / max(run_end - run_start - 1, 1)
            frame = render_frame(action, phase, cam, cam_rng)
            cv2.imwrite(str(folder / f"img{i:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (root / f"{name}_truth.txt").write_text("".join(f"{v}\n" for v in labels))
    return labels


def make_fixture(root: Path) -> Path:
    """Write the tiny dataset under ``root/IXMAS`` and return that folder."""
    out = Path(root) / "IXMAS"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2006)
    for name in TAKES:
        make_take(out, name, rng)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixture.py OUT_DIR")
    print(make_fixture(Path(sys.argv[1])))
