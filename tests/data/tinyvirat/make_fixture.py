"""Write a tiny TinyVIRAT-v2 in the official layout (for tests).

``make_fixture(root)`` creates ``root/TinyVIRAT_V2`` with ``class_map.json`` (4 of the 26 real
class names, written out of index order), ``tiny_train_v2.json`` (12 clips),
``tiny_val_v2.json`` (8 clips, one id skipped as in the real file), ``tiny_test_v2_public.json``
(6 clips, no labels) and H.264 videos under ``videos/{train,val}/<video_id>/<id>.mp4`` and
``videos/test/<id>.mp4``. Clips have mixed sizes (10×14 to 64×48, one odd 15×21 request that
``write_video`` pads to 16×22) and 8–16 frames; ``dim`` holds what was written. Each label draws a
blob with its own colour and motion, so the labels are learnable. Deterministic (seeded).

Run ``python tests/data/tinyvirat/make_fixture.py OUT_DIR`` to write one by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from lowres_har.data.io import write_video

#: Written out of index order on purpose: class order must come from the indices.
CLASS_MAP = {"Talking": 2, "activity_carrying": 3, "activity_walking": 0, "activity_standing": 1}

WALK, STAND, TALK, CARRY = "activity_walking", "activity_standing", "Talking", "activity_carrying"

TRAIN_LABELS = [
    [WALK],
    [WALK],
    [STAND],
    [STAND],
    [TALK, STAND],
    [TALK],
    [CARRY, WALK],
    [CARRY, WALK],
    [WALK],
    [STAND],
    [TALK, STAND],
    [CARRY, WALK],
]
VAL_LABELS = [[WALK], [STAND], [TALK], [CARRY, WALK], [TALK, STAND], [WALK], [STAND], [CARRY]]
TEST_LABELS = [[WALK], [STAND], [TALK], [CARRY, WALK], [TALK, STAND], [WALK]]

#: Requested (H, W) sizes, cycled; (15, 21) is odd and gets padded to (16, 22) by write_video.
SIZES = [(12, 10), (24, 30), (64, 48), (15, 21), (32, 32), (10, 14)]
LENGTHS = [8, 12, 16, 10]

COLOURS = {
    WALK: (230, 40, 40),
    STAND: (40, 220, 60),
    TALK: (50, 80, 240),
    CARRY: (240, 220, 40),
}


def render(
    labels: list[str], size: tuple[int, int], frames: int, rng: np.random.Generator
) -> np.ndarray:
    """uint8 ``(T, H, W, 3)``: a grey background with one blob per label (walking moves right,
    carrying moves down, standing stays, talking blinks)."""
    h, w = size
    clip = np.full((frames, h, w, 3), 70, np.uint8)
    clip += rng.integers(0, 12, size=clip.shape, dtype=np.uint8)
    r = max(1, min(h, w) // 5)
    for t in range(frames):
        phase = t / max(frames - 1, 1)
        for name in labels:
            if name == WALK:
                cy, cx = h // 2, int(r + phase * (w - 2 * r - 1))
            elif name == CARRY:
                cy, cx = int(r + phase * (h - 2 * r - 1)), w // 3
            elif name == STAND:
                cy, cx = h // 3, w // 4
            else:  # talking: blinks every other frame
                if t % 2:
                    continue
                cy, cx = 2 * h // 3, 3 * w // 4
            clip[t, max(cy - r, 0) : cy + r + 1, max(cx - r, 0) : cx + r + 1] = COLOURS[name]
    return clip


def _write_split(
    root: Path, split: str, labels: list[list[str]], rng: np.random.Generator
) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    number = 0
    for i, clip_labels in enumerate(labels):
        if split == "val" and i == 2:
            number += 1  # the real val file skips ids too
        clip_id = f"{number:05d}"
        number += 1
        if split == "test":
            video_id, rel = clip_id, f"{clip_id}.mp4"
        else:
            video_id = f"VIRAT_S_{split.upper()}{i // 3:02d}_01_000100_000200"
            rel = f"{video_id}/{clip_id}.mp4"
        h, w = SIZES[i % len(SIZES)]
        frames = LENGTHS[i % len(LENGTHS)]
        clip = render(clip_labels, (h, w), frames, rng)
        write_video(root / "videos" / split / rel, clip, fps=30)
        entry: dict[str, object] = {
            "id": clip_id,
            "video_id": video_id,
            "path": rel,
            "dim": [frames, h + h % 2, w + w % 2],  # what write_video wrote (even sizes)
        }
        if split != "test":
            entry["label"] = clip_labels
        entries.append(entry)
    return entries


def make_fixture(root: Path) -> Path:
    """Write the tiny dataset under ``root/TinyVIRAT_V2`` and return that folder."""
    out = Path(root) / "TinyVIRAT_V2"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2021)
    (out / "class_map.json").write_text(json.dumps(CLASS_MAP, indent=4))
    splits = {
        "train": ("tiny_train_v2.json", TRAIN_LABELS),
        "val": ("tiny_val_v2.json", VAL_LABELS),
        "test": ("tiny_test_v2_public.json", TEST_LABELS),
    }
    for split, (name, labels) in splits.items():
        entries = _write_split(out, split, labels, rng)
        (out / name).write_text(json.dumps(entries, indent=6))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixture.py OUT_DIR")
    print(make_fixture(Path(sys.argv[1])))
