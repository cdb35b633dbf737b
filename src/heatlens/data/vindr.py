"""VinDr-CXR (PhysioNet release): DICOM images, several radiologists' labels per image, lesion boxes."""

from pathlib import Path

from heatlens.data.errors import DataError
from heatlens.data.findings import attach_boxes, box_number, chosen_findings, labelled_sample, read_table
from heatlens.data.samples import Listing, Sample, require_folder
from heatlens.data.settings import DataSettings

READER_VOTES = ("any", "majority")
_ID_COLUMNS = ("image_id", "rad_id")
_BOX_COLUMNS = ["image_id", "class_name", "x_min", "y_min", "x_max", "y_max"]


def _annotations(root: Path) -> Path:
    return root / "annotations" if (root / "annotations").is_dir() else root


def _votes(table: Path, rows: list, findings: list[str]) -> dict[str, list[list[float]]]:
    """image_id -> one 0/1 list per reader row."""
    votes: dict[str, list[list[float]]] = {}
    for line, row in rows:
        values = []
        for finding in findings:
            if row[finding] not in ("0", "1", "0.0", "1.0"):
                raise DataError(f"{table}:{line}: column {finding!r}: {row[finding]!r} is not 0 or 1")
            values.append(float(row[finding]))
        if not row["image_id"]:
            raise DataError(f"{table}:{line}: column 'image_id' is empty")
        votes.setdefault(row["image_id"], []).append(values)
    return votes


def _decide(votes: list[list[float]], rule: str) -> list[float]:
    """`any`: positive when one reader says so; `majority`: when more than half of the readers do."""
    readers = len(votes)
    counts = [sum(v[k] for v in votes) for k in range(len(votes[0]))]
    return [float(c > 0 if rule == "any" else c > readers / 2) for c in counts]


def _boxes(table: Path, findings: list[str], known: list[str]) -> dict[tuple[str, str], list]:
    """(image_id, finding) -> boxes (x_min, y_min, x_max, y_max); 'No finding' rows carry none."""
    boxes: dict[tuple[str, str], list] = {}
    for line, row in read_table(table, _BOX_COLUMNS):
        place = f"{table}:{line}"
        name = row["class_name"]
        if name.lower() == "no finding":
            continue
        if name not in known:
            raise DataError(f"{place}: column 'class_name': {name!r} is not a label of the image_labels table")
        corners = [box_number(row[c], place, c) for c in _BOX_COLUMNS[2:]]
        if name in findings:
            boxes.setdefault((row["image_id"], name), []).append(tuple(corners))
    return boxes


def list_vindr_cxr(root: Path, settings: DataSettings) -> Listing:
    """`annotations/image_labels_{train,test}.csv` (one row per reader; `data.readers: any | majority`),
    `annotations/annotations_{train,test}.csv` boxes as per-finding `box` masks (boxes of the findings the
    vote makes positive), DICOMs at `{train,test}/<image_id>.dicom`. No patient ids are published: each
    image is its own group."""
    require_folder(root, "data.root")
    rule = settings.option("readers", "any")
    if rule not in READER_VOTES:
        raise DataError(f"data.readers={rule!r}: expected one of {list(READER_VOTES)}")
    folder = _annotations(root)
    samples: dict[str, Sample] = {}
    findings: list[str] | None = None
    box_tables = []
    for split in ("train", "test"):
        table = folder / f"image_labels_{split}.csv"
        if split == "test" and not table.is_file():
            continue
        rows = read_table(table, ["image_id"])
        available = [c for c in rows[0][1] if c not in _ID_COLUMNS and c.lower() != "no finding"]
        if findings is None:
            known = available
            findings = chosen_findings(settings, available, "VinDr-CXR")
        elif set(available) != set(known):
            raise DataError(f"{table}: its label columns differ from image_labels_train.csv's")
        for image_id, votes in _votes(table, rows, findings).items():
            image = root / split / f"{image_id}.dicom"
            if not image.is_file() and (root / split / f"{image_id}.dcm").is_file():
                image = root / split / f"{image_id}.dcm"
            if not image.is_file() and settings.on_bad_image != "skip":
                raise DataError(f"{table}: image {image_id}: file not found: {image}")
            samples[image_id] = labelled_sample(f"{split}/{image.name}", image, findings, _decide(votes, rule),
                                                group=image_id, split=split if (folder / "image_labels_test.csv")
                                                .is_file() else None)
        if (folder / f"annotations_{split}.csv").is_file():
            box_tables.append(folder / f"annotations_{split}.csv")
    kinds = []
    for table in box_tables:
        boxes = _boxes(table, findings, known)
        # Only the boxes of findings the vote makes positive: a box must sit on a positive finding.
        positive = {(i, f): b for (i, f), b in boxes.items() if i in samples
                    and samples[i].targets[findings.index(f)] == 1.0}
        if attach_boxes(samples, positive, table):
            kinds = ["box"]
    return Listing(list(samples.values()), findings, kinds, task="multilabel", per_finding=kinds)
