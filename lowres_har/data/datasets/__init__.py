"""Map-style video datasets reading official on-disk layouts."""

from lowres_har.data.datasets.base import ClipDataset

__all__ = ["ClipDataset"]
