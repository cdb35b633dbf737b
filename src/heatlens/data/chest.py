"""Multi-label chest X-ray readers of the files as distributed: NIH ChestX-ray14, CheXpert, MIMIC-CXR-JPG."""

import logging
import re
from pathlib import Path

from heatlens.data.errors import DataError
from heatlens.data.findings import (
    FRONTAL,
    attach_boxes,
    box_number,
    chosen_findings,
    find_file,
    finding_value,
    labelled_sample,
    read_rows,
    read_table,
    uncertain_policy,
    view_policy,
)
from heatlens.data.samples import Listing, Sample, require_folder
from heatlens.data.settings import DataSettings

log = logging.getLogger(__name__)

# The 14 findings in the order of Wang et al. 2017 and CheXNet.
CHESTXRAY14 = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
               "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")
NO_FINDING = "No Finding"
_BOX_NAMES = {"Infiltrate": "Infiltration"}  # BBox_List_2017.csv spells this finding differently
# The CheXpert labeller's 14 observations less "No Finding" (an image with no positive finding is normal).
CHEXPERT = ("Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation",
            "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
            "Support Devices")
_PATIENT = re.compile(r"(patient\d+)")


def _missing_image(place: str, image: Path, settings: DataSettings) -> None:
    if settings.on_bad_image != "skip" and not image.is_file():
        raise DataError(f"{place}: image file not found: {image}")


def _data_entry(root: Path, settings: DataSettings) -> Path:
    named = settings.option("csv")
    if named:
        return root / str(named)
    tables = sorted(root.glob("Data_Entry_2017*.csv"))  # the 2020 re-release sorts after the original
    if not tables:
        raise DataError(f"data.root={root}: no Data_Entry_2017*.csv (the ChestX-ray14 label table)")
    return tables[-1]


def _chestxray14_boxes(table: Path, findings: list[str]) -> dict[tuple[str, str], list]:
    """BBox_List_2017.csv: Image Index, Finding Label, x, y, w, h (the header names them `Bbox [x,y,w,h]`)."""
    boxes: dict[tuple[str, str], list] = {}
    for line, fields in read_rows(table):
        place = f"{table}:{line}"
        if len(fields) < 6:
            raise DataError(f"{place}: expected Image Index, Finding Label, x, y, w, h; got {fields}")
        name, finding = fields[0], _BOX_NAMES.get(fields[1], fields[1])
        if finding not in CHESTXRAY14:
            raise DataError(f"{place}: column 'Finding Label': {fields[1]!r} is not a ChestX-ray14 finding")
        x, y, w, h = (box_number(v, place, c) for v, c in zip(fields[2:6], ("x", "y", "w", "h")))
        if finding in findings:
            boxes.setdefault((name, finding), []).append((x, y, x + w, y + h))
    return boxes


def list_chestxray14(root: Path, settings: DataSettings) -> Listing:
    """NIH ChestX-ray14: `Data_Entry_2017*.csv`, images in `images*/` (any depth), the official
    `train_val_list.txt` / `test_list.txt` split when present, `BBox_List_2017.csv` boxes as `box` masks."""
    require_folder(root, "data.root")
    findings = chosen_findings(settings, list(CHESTXRAY14), "ChestX-ray14")
    table = _data_entry(root, settings)
    rows = read_table(table, ["Image Index", "Finding Labels", "Patient ID"])  # every view (PA, AP) is frontal
    images = {p.name: p for folder in sorted(root.glob("images*")) if folder.is_dir() for p in folder.rglob("*.png")}
    split_of = {}
    for name, split in (("train_val_list.txt", "train"), ("test_list.txt", "test")):
        if (root / name).is_file():
            split_of.update({n.strip(): split for n in (root / name).read_text().split() if n.strip()})
    samples: dict[str, Sample] = {}
    for line, row in rows:
        place = f"{table}:{line}"
        name = row["Image Index"]
        positives = set(row["Finding Labels"].split("|")) - {NO_FINDING}
        unknown = sorted(positives - set(CHESTXRAY14))
        if not name or unknown or not row["Finding Labels"]:
            column = "Image Index" if not name else "Finding Labels"
            raise DataError(f"{place}: column {column!r}: {row[column]!r} is not a list of ChestX-ray14 findings "
                            "joined by '|' (or 'No Finding')")
        if not row["Patient ID"]:
            raise DataError(f"{place}: column 'Patient ID' is empty")
        if split_of and name not in split_of:
            raise DataError(f"{place}: {name} is in neither train_val_list.txt nor test_list.txt")
        image = images.get(name, root / "images" / name)
        _missing_image(place, image, settings)
        targets = [1.0 if f in positives else 0.0 for f in findings]
        samples[name] = labelled_sample(image.relative_to(root).as_posix(), image, findings, targets,
                                        group=f"patient{row['Patient ID']}", split=split_of.get(name))
    kinds = []
    bbox = root / "BBox_List_2017.csv"
    if bbox.is_file() and attach_boxes(samples, _chestxray14_boxes(bbox, findings), bbox):
        kinds = ["box"]
    return Listing(list(samples.values()), findings, kinds, task="multilabel", per_finding=kinds)


def _chexpert_image(root: Path, path: str) -> Path:
    """`Path` starts with the download's folder name (CheXpert-v1.0-small/train/...); data.root is that
    folder, or the one holding it."""
    relative = Path(path)
    if relative.parts and relative.parts[0] == root.name:
        return root.joinpath(*relative.parts[1:])
    return root / relative


def list_chexpert(root: Path, settings: DataSettings) -> Listing:
    """CheXpert: `train.csv` (train) and `valid.csv` (the radiologist-labelled set, used as the test split;
    validation is carved from train by `data.split`), `Frontal/Lateral` for `data.views`, the patient from
    the path; 1 / 0 / -1 (per `data.uncertain`) / blank (unknown)."""
    require_folder(root, "data.root")
    findings = chosen_findings(settings, list(CHEXPERT), "CheXpert")
    uncertain, views = uncertain_policy(settings), view_policy(settings)
    tables = [(root / "train.csv", "train")]
    if (root / "valid.csv").is_file():
        tables.append((root / "valid.csv", "test"))
    samples = []
    for table, split in tables:
        for line, row in read_table(table, ["Path", "Frontal/Lateral", *findings]):
            place = f"{table}:{line}"
            view = row["Frontal/Lateral"]
            if view not in ("Frontal", "Lateral"):
                raise DataError(f"{place}: column 'Frontal/Lateral': {view!r} is not Frontal or Lateral")
            patient = _PATIENT.search(row["Path"])
            if patient is None:
                raise DataError(f"{place}: column 'Path': {row['Path']!r} names no patientNNNNN folder")
            if views == "frontal" and view != "Frontal":
                continue
            targets = [finding_value(row[f], place, f, uncertain) for f in findings]
            image = _chexpert_image(root, row["Path"])
            _missing_image(place, image, settings)
            samples.append(labelled_sample(image.relative_to(root).as_posix(), image, findings, targets,
                                           group=patient.group(1), split=split if len(tables) > 1 else None))
    if not samples:
        raise DataError(f"{root / 'train.csv'}: no image left after data.views={views}")
    return Listing(samples, findings, [], task="multilabel")


_MIMIC = "mimic-cxr-2.0.0-{}.csv"
_MIMIC_SPLITS = {"train": "train", "validate": "val", "test": "test"}


def _mimic_table(root: Path, part: str, required: list[str]) -> tuple[Path, list]:
    path = find_file(root, [_MIMIC.format(part)])
    if path is None:
        raise DataError(f"data.root={root}: {_MIMIC.format(part)} (or .csv.gz) not found")
    return path, read_table(path, required)


def list_mimic_cxr(root: Path, settings: DataSettings) -> Listing:
    """MIMIC-CXR-JPG: labels per study (`-chexpert.csv`), the official split per image (`-split.csv`), the
    view per image (`-metadata.csv`), images at `files/pXX/p<subject>/s<study>/<dicom_id>.jpg`."""
    require_folder(root, "data.root")
    findings = chosen_findings(settings, list(CHEXPERT), "MIMIC-CXR")
    uncertain, views = uncertain_policy(settings), view_policy(settings)
    labels_path, label_rows = _mimic_table(root, "chexpert", ["subject_id", "study_id", *findings])
    study_labels = {}
    for line, row in label_rows:
        place = f"{labels_path}:{line}"
        study_labels[row["study_id"]] = [finding_value(row[f], place, f, uncertain) for f in findings]
    meta_path, meta_rows = _mimic_table(root, "metadata", ["dicom_id", "ViewPosition"])
    view_of = {row["dicom_id"]: row["ViewPosition"] for _, row in meta_rows}
    split_path, split_rows = _mimic_table(root, "split", ["dicom_id", "study_id", "subject_id", "split"])
    samples, unlabelled = [], 0
    for line, row in split_rows:
        place = f"{split_path}:{line}"
        split = _MIMIC_SPLITS.get(row["split"])
        if split is None:
            raise DataError(f"{place}: column 'split': {row['split']!r} is not one of {list(_MIMIC_SPLITS)}")
        subject, study = row["subject_id"], row["study_id"]
        if not subject.isdigit() or not study.isdigit():
            raise DataError(f"{place}: columns 'subject_id', 'study_id': {subject!r}, {study!r} are not numbers")
        if row["dicom_id"] not in view_of:
            raise DataError(f"{place}: dicom_id {row['dicom_id']!r} has no row in {meta_path}")
        if views == "frontal" and view_of[row["dicom_id"]] not in FRONTAL:
            continue
        if study not in study_labels:
            unlabelled += 1  # a study the labeller gave no row: nothing to learn from it
            continue
        relative = f"files/p{subject[:2]}/p{subject}/s{study}/{row['dicom_id']}.jpg"
        _missing_image(place, root / relative, settings)
        samples.append(labelled_sample(relative, root / relative, findings, study_labels[study],
                                       group=subject, split=split))
    if unlabelled:
        log.info("MIMIC-CXR: %d image(s) of studies without a row in %s left out", unlabelled, labels_path.name)
    if not samples:
        raise DataError(f"{split_path}: no labelled image left after data.views={views}")
    return Listing(samples, findings, [], task="multilabel")
