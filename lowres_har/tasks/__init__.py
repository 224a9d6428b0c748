"""LightningModules, one per training recipe."""

from lowres_har.tasks.classification import VideoClassificationTask

__all__ = ["VideoClassificationTask"]
