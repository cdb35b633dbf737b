"""What a format reader returns: the samples of a dataset, before decoding."""

from dataclasses import dataclass, field
from pathlib import Path

from heatlens.data.decode import Source, is_image_file
from heatlens.data.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass
class Sample:
    id: str  # stable across machines: the path relative to the dataset root
    image: Source
    label: str
    masks: dict[str, Source] = field(default_factory=dict)  # kind -> source; absent kind = empty mask
    group: str | None = None  # e.g. patient id: never in two splits
    split: str | None = None  # predefined split, one of SPLITS


@dataclass
class Listing:
    samples: list[Sample]
    class_names: list[str]
    mask_kinds: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)  # files left out (on_bad_image=skip)


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (DICOM recognised by content, see `is_image_file`), sorted."""
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in pattern if is_image_file(p) and p.is_file())


def sub_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def require_folder(path: Path, key: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{key}={path}: folder not found")
    return path


def relative_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()
