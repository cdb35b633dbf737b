"""Folder-layout readers: COVID-19 Radiography Database (and the phantom), image folders, split folders."""

from pathlib import Path

from heatlens.data.decode import Source
from heatlens.data.errors import DataError
from heatlens.data.samples import SPLITS, Listing, Sample, image_files, relative_id, require_folder, sub_folders


def _attach_masks(samples: list[Sample], images_dir: Path, masks_dir: Path, kind: str) -> None:
    """Pair masks with images by file stem; a mask that matches no image is an error."""
    by_stem = {sample.image.path.stem: sample for sample in samples}
    for mask in image_files(masks_dir):
        sample = by_stem.get(mask.stem)
        if sample is None:
            raise DataError(f"{mask}: mask matches no image in {images_dir}")
        sample.masks[kind] = Source(mask)


def list_covid_radiography(root: Path, mask_dirs: dict[str, str]) -> Listing:
    """`<root>/<Class>/images/*.png` with optional `<root>/<Class>/<mask dir>/` of same-named masks.

    `mask_dirs` maps a mask kind to its sub-folder, e.g. {"lung": "masks"}.
    """
    require_folder(root, "data.root")
    class_dirs = sub_folders(root)
    if not class_dirs:
        raise DataError(f"data.root={root}: no class folders (expected <root>/<Class>/images/*.png)")
    samples: list[Sample] = []
    for class_dir in class_dirs:
        images_dir = class_dir / "images"
        if not images_dir.is_dir():
            raise DataError(f"{class_dir}: class folder has no images/ sub-folder "
                            "(expected <root>/<Class>/images/*.png)")
        files = image_files(images_dir)
        if not files:
            raise DataError(f"{images_dir}: empty class folder, no images")
        class_samples = [Sample(relative_id(f, root), Source(f), class_dir.name) for f in files]
        for kind, folder in mask_dirs.items():
            if (class_dir / folder).is_dir():
                _attach_masks(class_samples, images_dir, class_dir / folder, kind)
        samples.extend(class_samples)
    return Listing(samples, [d.name for d in class_dirs], list(mask_dirs))


def _class_samples(folder: Path, root: Path, split: str | None) -> tuple[list[Sample], list[str]]:
    class_dirs = sub_folders(folder)
    if not class_dirs:
        raise DataError(f"{folder}: no class sub-folders (expected {folder}/<class>/<images>)")
    samples = []
    for class_dir in class_dirs:
        files = image_files(class_dir, recursive=True)
        if not files:
            raise DataError(f"{class_dir}: empty class folder, no images")
        samples.extend(Sample(relative_id(f, root), Source(f), class_dir.name, split=split) for f in files)
    return samples, [d.name for d in class_dirs]


def list_image_folder(root: Path) -> Listing:
    """`<root>/<class>/**/<image>`: one sub-folder per class, images at any depth below it."""
    require_folder(root, "data.root")
    samples, class_names = _class_samples(root, root, None)
    return Listing(samples, class_names, [])


def list_split_folders(root: Path) -> Listing:
    """`<root>/{train,val,test}/<class>/<image>` (val optional), as in the pediatric pneumonia set."""
    require_folder(root, "data.root")
    present = {d.name.lower(): d for d in sub_folders(root)}
    missing = [s for s in ("train", "test") if s not in present]
    if missing:
        raise DataError(f"data.root={root}: split folder(s) {missing} missing (expected <root>/train, "
                        "<root>/test and optionally <root>/val, each with class sub-folders)")
    samples: list[Sample] = []
    class_names: set[str] = set()
    for split in SPLITS:
        if split in present:
            split_samples, names = _class_samples(present[split], root, split)
            samples.extend(split_samples)
            class_names.update(names)
    return Listing(samples, sorted(class_names), [])
