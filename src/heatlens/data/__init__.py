"""Datasets and formats (DICOM by content), the phantom, the decoded cache, splits, seeded augmentation, DataModule.
Imports only heatlens.paths, heatlens.progress and third-party libraries: no other heatlens package, no MLflow.

Members are imported on first use (heatlens.lazy): importing the package costs nothing.
"""

from heatlens.data.errors import DataError as DataError
from heatlens.lazy import lazy_members

_MEMBERS = {
    "HeatlensDataModule": "datamodule",
    "build_datamodule": "datamodule",
}

__all__ = sorted([*_MEMBERS, "DataError"])
__getattr__ = lazy_members(__name__, _MEMBERS)
