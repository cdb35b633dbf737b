"""Table-driven readers: a generic CSV manifest and the CoronaHack metadata CSV."""

import logging
from collections import Counter
from pathlib import Path

from heatlens.data.decode import Source
from heatlens.data.errors import DataError
from heatlens.data.findings import finding_value, labelled_sample, read_table, uncertain_policy
from heatlens.data.samples import SPLITS, Listing, Sample, image_files, require_folder
from heatlens.data.settings import DataSettings

log = logging.getLogger(__name__)

_SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


def _read_rows(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; a missing file or column is an error naming the file."""
    if not path.is_file():
        raise DataError(f"data.csv={path}: file not found")
    return read_table(path, required)


def _resolve(value: str, root: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _check_classes(labels: list[str], settings: DataSettings, where: list[str]) -> list[str]:
    """Class names: `data.classes` when given (every label must be one of them), else sorted labels."""
    declared = settings.option("classes")
    if declared is None:
        return sorted(set(labels))
    declared = [str(c) for c in declared]
    for label, place in zip(labels, where):
        if label not in declared:
            raise DataError(f"{place}: unknown label {label!r}; data.classes={declared}")
    return declared


def list_csv(root: Path, settings: DataSettings) -> Listing:
    """`data.csv` (relative to data.root) with columns `path,label[,mask][,group][,split]`;
    paths relative to data.root. The mask kind is `data.mask_kind` (default "mask")."""
    require_folder(root, "data.root")
    table = _resolve(str(settings.option("csv", "labels.csv")), root)
    multilabel = settings.task == "multilabel"
    rows = _read_rows(table, ["path"] if multilabel else ["path", "label"])
    targets = multilabel_targets(table, rows, settings) if multilabel else None
    mask_kind = str(settings.option("mask_kind", "mask"))
    has_split = any(row.get("split") for _, row in rows)
    samples, seen = [], {}
    for index, (line, row) in enumerate(rows):
        place = f"{table}:{line}"
        if not row["path"] or not (multilabel or row["label"]):
            raise DataError(f"{place}: empty path or label")
        if row["path"] in seen:
            raise DataError(f"{place}: duplicate path {row['path']!r} (first on line {seen[row['path']]})")
        seen[row["path"]] = line
        image = _resolve(row["path"], root)
        if not image.is_file() and settings.on_bad_image != "skip":
            raise DataError(f"{place}: image file not found: {image}")
        if targets is not None:
            sample = labelled_sample(row["path"], image, targets[0], targets[1][index], group=row.get("group") or None)
        else:
            sample = Sample(row["path"], Source(image), row["label"], group=row.get("group") or None)
        if row.get("mask"):
            mask = _resolve(row["mask"], root)
            if not mask.is_file():
                raise DataError(f"{place}: mask file not found: {mask}")
            sample.masks[mask_kind] = Source(mask)
        if has_split:
            split = _SPLIT_ALIASES.get(row.get("split", "").lower())
            if split is None:
                raise DataError(f"{place}: split {row.get('split')!r} is not one of {list(SPLITS)} "
                                "(when the split column is used, every row needs one)")
            sample.split = split
        samples.append(sample)
    has_masks = any(s.masks for s in samples)
    if targets is not None:
        return Listing(samples, targets[0], [mask_kind] if has_masks else [], task="multilabel")
    classes = _check_classes([s.label for s in samples], settings, [f"{table}:{line}" for line, _ in rows])
    return Listing(samples, classes, [mask_kind] if has_masks else [])


def multilabel_targets(table: Path, rows: list, settings: DataSettings) -> tuple[list[str], list[list[float]]]:
    """Findings and one target list per row of a multi-label manifest: one column per finding named by
    `data.classes` (1 / 0 / -1 per `data.uncertain` / blank unknown), or a `label` column of names joined
    by `|` (empty or `data.normal_label` = no finding; findings = `data.classes` or every name used)."""
    columns = list(rows[0][1])
    declared = settings.option("classes")
    declared = [str(c) for c in declared] if declared is not None else None
    if declared and all(c in columns for c in declared):
        uncertain = uncertain_policy(settings)
        return declared, [[finding_value(row[c], f"{table}:{line}", c, uncertain) for c in declared]
                          for line, row in rows]
    if "label" not in columns:
        raise DataError(f"{table}: a multi-label manifest needs a 'label' column of findings joined by '|', or "
                        f"one column per finding named in data.classes (has {columns}; data.classes={declared})")
    normal = str(settings.option("normal_label", "No Finding"))
    names = [{n.strip() for n in row["label"].split("|") if n.strip()} - {normal} for _, row in rows]
    findings = declared or sorted(set().union(*names))
    for (line, row), positives in zip(rows, names):
        unknown = sorted(positives - set(findings))
        if unknown:
            raise DataError(f"{table}:{line}: column 'label': unknown finding(s) {unknown}; data.classes={findings}")
    if not findings:
        raise DataError(f"{table}: column 'label' names no finding in any row")
    return findings, [[1.0 if f in positives else 0.0 for f in findings] for positives in names]


# CoronaHack: the finest category given wins (Label_2 over Label_1 over Label).
_CORONAHACK_ORDER = ["normal", "bacteria", "virus", "covid"]
_CORONAHACK_NAMES = {"covid-19": "covid"}
CORONAHACK_COLUMNS = ["X_ray_image_name", "Label", "Dataset_type", "Label_1_Virus_category",
                      "Label_2_Virus_category"]


def _coronahack_class(row: dict[str, str], place: str) -> str:
    if row["Label"].lower() == "normal":
        return "normal"
    for column in ("Label_2_Virus_category", "Label_1_Virus_category"):
        if row.get(column):
            name = row[column].lower()
            return _CORONAHACK_NAMES.get(name, name)
    raise DataError(f"{place}: unknown label {row['Label']!r} with no virus category")


def list_coronahack(root: Path, settings: DataSettings) -> Listing:
    """CoronaHack chest X-ray set: metadata CSV -> normal / bacteria / virus / covid (+ rare classes,
    dropped below `data.min_class_size` images); Dataset_type TRAIN / TEST is the predefined split."""
    require_folder(root, "data.root")
    table = _resolve(str(settings.option("csv", "Chest_xray_Corona_Metadata.csv")), root)
    rows = _read_rows(table, CORONAHACK_COLUMNS)
    by_name: dict[str, list[Path]] = {}
    for path in image_files(root, recursive=True):
        by_name.setdefault(path.name, []).append(path)
    samples = []
    for line, row in rows:
        place = f"{table}:{line}"
        split = {"TRAIN": "train", "TEST": "test"}.get(row["Dataset_type"].upper())
        if split is None:
            raise DataError(f"{place}: Dataset_type {row['Dataset_type']!r} is not TRAIN or TEST")
        candidates = by_name.get(row["X_ray_image_name"], [])
        # The download has train/ and test/ folders; a name may exist in both.
        matching = [p for p in candidates if split in {part.lower() for part in p.parent.parts}] or candidates
        if not matching:
            if settings.on_bad_image != "skip":
                raise DataError(f"{place}: image file not found: {row['X_ray_image_name']} (searched under {root})")
            matching = [root / split / row["X_ray_image_name"]]  # decoding reports it as skipped
        image = matching[0]
        samples.append(Sample(image.relative_to(root).as_posix(), Source(image), _coronahack_class(row, place),
                              split=split))
    counts = Counter(s.label for s in samples)
    min_size = int(settings.option("min_class_size", 0))
    dropped = sorted(c for c, n in counts.items() if n < min_size)
    if dropped:
        log.info("CoronaHack: dropping classes below data.min_class_size=%d: %s", min_size,
                 {c: counts[c] for c in dropped})
        samples = [s for s in samples if s.label not in dropped]
    present = {s.label for s in samples}
    classes = [c for c in _CORONAHACK_ORDER if c in present] + sorted(present - set(_CORONAHACK_ORDER))
    return Listing(samples, classes, [])
