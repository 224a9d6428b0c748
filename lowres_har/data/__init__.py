"""Video I/O, datasets, sampling, preprocessing cache and LightningDataModules."""

from lowres_har.data.datamodules import SynthActionsDataModule, VideoDataModule
from lowres_har.data.datasets.folder import VideoFolderDataModule
from lowres_har.data.datasets.hmdb51 import HMDB51DataModule
from lowres_har.data.datasets.ixmas import IXMASDataModule
from lowres_har.data.datasets.kinetics import KineticsDataModule
from lowres_har.data.datasets.tinyvirat import TinyVIRATDataModule
from lowres_har.data.datasets.ucf101 import UCF101DataModule

__all__ = [
    "HMDB51DataModule",
    "IXMASDataModule",
    "KineticsDataModule",
    "SynthActionsDataModule",
    "TinyVIRATDataModule",
    "UCF101DataModule",
    "VideoDataModule",
    "VideoFolderDataModule",
]
