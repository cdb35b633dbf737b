"""Datasets and formats (DICOM by content), the phantom, the decoded cache, splits, seeded augmentation, DataModule.
Imports only heatlens.paths, heatlens.progress and third-party libraries: no other heatlens package, no MLflow.
"""

from heatlens.data.datamodule import HeatlensDataModule, build_datamodule
from heatlens.data.errors import DataError

__all__ = ["DataError", "HeatlensDataModule", "build_datamodule"]
