"""Datasets, the built-in phantom, the decoded cache, splits, transforms and the DataModule."""

from heatlens.data.datamodule import HeatlensDataModule, build_datamodule
from heatlens.data.errors import DataError

__all__ = ["DataError", "HeatlensDataModule", "build_datamodule"]
