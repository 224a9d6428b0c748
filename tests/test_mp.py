"""process_pool: forked workers after OpenCV ran threaded in the parent; the setting is restored."""

from __future__ import annotations

import cv2
import numpy as np

from lowres_har._mp import process_pool


def _work(seed: int) -> float:
    rng = np.random.default_rng(seed)
    img = rng.random((256, 256, 3)).astype(np.float32)
    cv2.setNumThreads(1)  # what workers used to do: hung when the parent's pool was running
    return float(cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).mean())


def test_fork_after_opencv_threads_ran() -> None:
    before = cv2.getNumThreads()
    big = np.random.default_rng(0).random((2048, 2048, 3)).astype(np.float32)
    for _ in range(3):  # start OpenCV's thread pool in the parent
        cv2.GaussianBlur(big, (31, 31), 5)
    with process_pool(2) as pool:
        results = list(pool.map(_work, range(8), timeout=60))
    assert len(results) == 8 and all(0.4 < r < 0.6 for r in results)
    assert cv2.getNumThreads() == before
