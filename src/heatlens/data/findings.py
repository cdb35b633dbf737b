"""Shared pieces of the multi-label readers: official tables, label encodings, finding subsets, box masks."""

import csv
import gzip
import io
import math
from pathlib import Path

from heatlens.data.decode import Source
from heatlens.data.errors import DataError
from heatlens.data.samples import Sample
from heatlens.data.settings import DataSettings

NAN = math.nan
UNCERTAIN_POLICIES = ("ignore", "ones", "zeros")  # CheXpert paper: U-Ignore (unknown), U-Ones, U-Zeros
VIEWS = ("frontal", "all")
FRONTAL = {"PA", "AP"}  # view positions of frontal films (MIMIC-CXR ViewPosition)


def read_table(path: Path, required: list[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a CSV (or .csv.gz) file, values stripped; a missing file or column
    is one error naming the file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = gzip.open(path, "rt", newline="", encoding="utf-8-sig") if path.suffix == ".gz" else \
        open(path, newline="", encoding="utf-8-sig")
    with raw as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing} (has {columns})")
        rows = [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}) for row in reader]
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a CSV whose header cannot be used by name (BBox_List_2017.csv), header skipped."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = f.read()
    reader = csv.reader(io.StringIO(lines))
    next(reader, None)
    return [(reader.line_num, [v.strip() for v in row]) for row in reader if any(v.strip() for v in row)]


def find_file(root: Path, names: list[str]) -> Path | None:
    """The first of `names` (also gzipped) found in `root`."""
    for name in names:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def uncertain_policy(settings: DataSettings) -> str:
    policy = settings.option("uncertain", "ignore")
    if policy not in UNCERTAIN_POLICIES:
        raise DataError(f"data.uncertain={policy!r}: expected one of {list(UNCERTAIN_POLICIES)}")
    return policy


def view_policy(settings: DataSettings) -> str:
    views = settings.option("views", "frontal")
    if views not in VIEWS:
        raise DataError(f"data.views={views!r}: expected one of {list(VIEWS)}")
    return views


def finding_value(value: str, place: str, column: str, uncertain: str = "ignore") -> float:
    """CheXpert labeller encoding: 1 positive, 0 negative, -1 uncertain (per `uncertain`), blank unknown (NaN)."""
    if value == "":
        return NAN
    try:
        number = float(value)
    except ValueError:
        number = NAN
    if number == 1.0:
        return 1.0
    if number == 0.0:
        return 0.0
    if number == -1.0:
        return {"ignore": NAN, "ones": 1.0, "zeros": 0.0}[uncertain]
    raise DataError(f"{place}: column {column!r}: {value!r} is not 1, 0, -1 or blank")


def chosen_findings(settings: DataSettings, available: list[str], dataset: str) -> list[str]:
    """`data.findings` (a subset, in its order) or every finding the dataset has."""
    wanted = settings.option("findings")
    if wanted is None:
        return list(available)
    if not isinstance(wanted, (list, tuple)) or not wanted:
        raise DataError(f"data.findings={wanted!r}: expected a list of finding names or null (all)")
    unknown = [str(f) for f in wanted if str(f) not in available]
    if unknown:
        raise DataError(f"data.findings: {unknown} not among the {dataset} findings {available}")
    return [str(f) for f in wanted]


def labelled_sample(sample_id: str, image: Path, findings: list[str], targets: list[float], **fields) -> Sample:
    """A multi-label Sample; `label` lists the positive findings (for logs and errors)."""
    label = "|".join(f for f, v in zip(findings, targets) if v == 1.0)
    return Sample(sample_id, Source(image), label, targets=tuple(targets), **fields)


def box_number(value: str, place: str, column: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = NAN
    if not math.isfinite(number) or number < 0:
        raise DataError(f"{place}: column {column!r}: {value!r} is not a non-negative number")
    return number


def attach_boxes(samples: dict[str, Sample], boxes: dict[tuple[str, str], list], table: Path) -> bool:
    """Per-finding `box` masks: boxes[(sample key, finding)] = [(x0, y0, x1, y1), ...] read from `table`."""
    for (key, finding), found in boxes.items():
        if key in samples:
            samples[key].masks[f"box/{finding}"] = Source(table, boxes=tuple(found))
    return any(key in samples for key, _ in boxes)
