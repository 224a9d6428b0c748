"""Process pools that fork safely next to OpenCV.

lowres-har's worker pools fork where the platform allows: ``spawn`` would re-import the caller's
``__main__`` and crash scripts without an ``if __name__ == "__main__"`` guard. Forking while
OpenCV's own thread pool is running is not safe: the child inherits a pool whose threads do not
exist, and its first ``cv2.setNumThreads`` (or parallel call) can wait for them forever. So the
parent switches OpenCV to one thread before forking (the children inherit that, and each child
runs on one core anyway) and restores the setting afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_all_start_methods, get_context
from typing import Any

import cv2

__all__ = ["process_pool"]


@contextmanager
def process_pool(
    workers: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[ProcessPoolExecutor]:
    """A ``ProcessPoolExecutor`` of ``workers`` forked processes (spawned where fork does not
    exist), with OpenCV single-threaded in the parent while the pool lives."""
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    try:
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=initializer, initargs=initargs
        ) as pool:
            yield pool
    finally:
        cv2.setNumThreads(previous)
