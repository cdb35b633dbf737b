"""What a format reader returns: the samples of a dataset, before decoding."""

from dataclasses import dataclass, field
from pathlib import Path

from heatlens.data.decode import Source, is_image_file
from heatlens.data.errors import DataError

SPLITS = ("train", "val", "test")
TASKS = ("multiclass", "multilabel")


@dataclass
class Sample:
    id: str  # stable across machines: the path relative to the dataset root
    image: Source
    label: str  # multiclass: the class name; multilabel: the positive findings joined by "|" (for logs)
    # kind -> source, absent kind = empty mask; per-finding kinds are keyed "<kind>/<finding>" (see mask_channels)
    masks: dict[str, Source] = field(default_factory=dict)
    group: str | None = None  # e.g. patient id: never in two splits
    split: str | None = None  # predefined split, one of SPLITS
    targets: tuple[float, ...] | None = None  # multilabel: one 1.0 / 0.0 / nan (unknown) per finding


@dataclass
class Listing:
    samples: list[Sample]
    class_names: list[str]
    mask_kinds: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)  # files left out (on_bad_image=skip)
    task: str = "multiclass"  # multilabel: class_names are the findings, every sample has `targets`
    per_finding: list[str] = field(default_factory=list)  # mask kinds with one channel per finding

    def mask_channels(self) -> list[str]:
        """The cache's mask channels in order: a shared kind is one channel, a per-finding kind K."""
        channels = []
        for kind in self.mask_kinds:
            channels += [f"{kind}/{name}" for name in self.class_names] if kind in self.per_finding else [kind]
        return channels


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
