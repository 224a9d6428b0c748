"""Shared clip content of the dataset fixtures: a coloured square moving in a class-dependent
direction over a noisy background, so a small model can learn the classes."""

from __future__ import annotations

import numpy as np

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
