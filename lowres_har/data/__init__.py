"""Video I/O, datasets, sampling and LightningDataModules."""

from lowres_har.data.datamodules import SynthActionsDataModule, VideoDataModule

__all__ = ["SynthActionsDataModule", "VideoDataModule"]
