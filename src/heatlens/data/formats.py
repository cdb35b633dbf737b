"""`data.format` -> the reader that lists a dataset's samples (the phantom is generated first)."""

from pathlib import Path

from heatlens.data.chest import list_chestxray14, list_chexpert, list_mimic_cxr
from heatlens.data.errors import DataError
from heatlens.data.folders import list_covid_radiography, list_image_folder, list_split_folders
from heatlens.data.mat import list_brain_tumor
from heatlens.data.phantom import CLASS_NAMES, DEFAULT_CLASS_FRACTIONS, PhantomSpec, ensure_phantom
from heatlens.data.phantom_multilabel import (
    DEFAULT_PREVALENCE,
    FINDINGS,
    MultilabelPhantomSpec,
    ensure_multilabel_phantom,
    list_multilabel_phantom,
)
from heatlens.data.samples import Listing
from heatlens.data.settings import DataSettings
from heatlens.data.tables import list_coronahack, list_csv
from heatlens.data.vindr import list_vindr_cxr
from heatlens.paths import cache_dir

PHANTOM_MASKS = {"lung": "masks", "lesion": "lesions"}
MULTILABEL_READERS = {"chestxray14": list_chestxray14, "chexpert": list_chexpert, "mimic_cxr": list_mimic_cxr,
                      "vindr_cxr": list_vindr_cxr}


def _number(value, key: str, kind: type):
    """int or float from the config, or a DataError naming the key (before anything is generated)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise DataError(f"data.{key}={value!r}: expected {'an integer' if kind is int else 'a number'}")
    return kind(value)


def phantom_spec(settings: DataSettings) -> PhantomSpec:
    """The phantom's generation parameters, validated (PhantomSpec checks the ranges)."""
    shortcut = settings.option("shortcut") or {}
    if not isinstance(shortcut, dict):
        raise DataError(f"data.shortcut={shortcut!r}: expected a mapping with fraction and class_name")
    fractions = settings.option("class_fractions")
    if isinstance(fractions, dict):
        unknown = set(fractions) - set(CLASS_NAMES)
        if unknown:
            raise DataError(f"data.class_fractions: unknown class(es) {sorted(unknown)}; "
                            f"classes are {list(CLASS_NAMES)}")
        fractions = [fractions.get(name, 0.0) for name in CLASS_NAMES]
    fractions = fractions or DEFAULT_CLASS_FRACTIONS
    if not isinstance(fractions, (list, tuple)):
        raise DataError(f"data.class_fractions={fractions!r}: expected a mapping class -> fraction")
    source_size = _number(settings.option("source_size", 128), "source_size", int)
    mask_size = settings.option("mask_size")
    mask_size = None if mask_size is None else _number(mask_size, "mask_size", int)
    return PhantomSpec(
        num_images=_number(settings.option("num_images", 2000), "num_images", int),
        source_size=source_size,
        # one dataset, one key: masks at the source size are the default however they were asked for
        mask_size=None if mask_size == source_size else mask_size,
        seed=_number(settings.option("generator_seed", 0), "generator_seed", int),
        class_fractions=tuple(_number(f, "class_fractions", float) for f in fractions),
        shortcut_fraction=_number(shortcut.get("fraction", 0.0), "shortcut.fraction", float),
        shortcut_class=str(shortcut.get("class_name", "COVID")),
        shortcut_kind=str(shortcut.get("kind", "corner")),
    )


def multilabel_phantom_spec(settings: DataSettings) -> MultilabelPhantomSpec:
    """`data=phantom data.task=multilabel`: findings drawn independently with `data.finding_prevalence`."""
    shortcut = settings.option("shortcut") or {}
    if not isinstance(shortcut, dict):
        raise DataError(f"data.shortcut={shortcut!r}: expected a mapping with fraction and class_name")
    if shortcut.get("kind", "corner") != "corner":
        raise DataError(f"data.shortcut.kind={shortcut.get('kind')!r}: the multi-label phantom draws the corner "
                        "marker only")
    prevalence = settings.option("finding_prevalence") or dict(zip(FINDINGS, DEFAULT_PREVALENCE))
    if not isinstance(prevalence, dict) or set(prevalence) - set(FINDINGS):
        raise DataError(f"data.finding_prevalence={prevalence!r}: expected a mapping finding -> probability "
                        f"over the findings {list(FINDINGS)}")
    source_size = _number(settings.option("source_size", 128), "source_size", int)
    mask_size = settings.option("mask_size")
    mask_size = None if mask_size is None else _number(mask_size, "mask_size", int)
    return MultilabelPhantomSpec(
        num_images=_number(settings.option("num_images", 2000), "num_images", int),
        source_size=source_size,
        seed=_number(settings.option("generator_seed", 0), "generator_seed", int),
        prevalence=tuple(_number(prevalence.get(f, d), "finding_prevalence", float)
                         for f, d in zip(FINDINGS, DEFAULT_PREVALENCE)),
        shortcut_fraction=_number(shortcut.get("fraction", 0.0), "shortcut.fraction", float),
        shortcut_finding=str(shortcut.get("class_name", "COVID")),
        mask_size=None if mask_size == source_size else mask_size,
    )


def check_phantom(settings: DataSettings) -> None:
    """Validate the phantom's generation keys of either task, before anything is generated."""
    (multilabel_phantom_spec if settings.task == "multilabel" else phantom_spec)(settings)


def phantom_root(settings: DataSettings) -> Path:
    multilabel = settings.task == "multilabel"
    spec = multilabel_phantom_spec(settings) if multilabel else phantom_spec(settings)
    root = settings.root or cache_dir() / "phantom" / spec.key()
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()  # an empty folder given as data.root: generate into it
    if multilabel:
        ensure_multilabel_phantom(spec, root, settings.build_workers)
    else:
        ensure_phantom(spec, root, settings.build_workers)
    if not (root / "manifest.csv").is_file():
        raise DataError(f"data.root={root}: exists but holds no phantom dataset (no manifest.csv); "
                        "point data.root at an empty or missing folder, or leave it null")
    return root


def list_samples(settings: DataSettings) -> Listing:
    """All samples of the configured dataset, with class names and mask kinds."""
    if settings.format == "phantom":
        if settings.task == "multilabel":
            return list_multilabel_phantom(phantom_root(settings))
        return list_covid_radiography(phantom_root(settings), PHANTOM_MASKS)
    root = settings.root
    assert root is not None  # parse_settings requires it for every real format
    if settings.format == "covid_radiography":
        return list_covid_radiography(root, {"lung": settings.option("mask_dir", "masks")})
    if settings.format == "image_folder":
        return list_image_folder(root)
    if settings.format == "split_folders":
        return list_split_folders(root)
    if settings.format == "csv":
        return list_csv(root, settings)
    if settings.format == "coronahack":
        return list_coronahack(root, settings)
    if settings.format in MULTILABEL_READERS:
        return MULTILABEL_READERS[settings.format](root, settings)
    return list_brain_tumor(root, settings.on_bad_image)
