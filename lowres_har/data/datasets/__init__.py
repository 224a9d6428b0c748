"""Map-style video datasets; one module per dataset reads its official on-disk layout."""

from lowres_har.data.datasets.base import (
    ClipDataset,
    SlidingWindowDataset,
    VideoEntry,
    check_videos,
)

__all__ = ["ClipDataset", "SlidingWindowDataset", "VideoEntry", "check_videos"]
