"""VinDr-CXR in its PhysioNet layout (real DICOMs from pydicom's test files): reader votes and box masks."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from heatlens.data import build_datamodule
from heatlens.data.errors import DataError
from heatlens.data.formats import list_samples
from heatlens.data.settings import parse_settings

LABELS = ["Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
          "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity", "Lung cavity", "Lung cyst",
          "Mediastinal shift", "Nodule/Mass", "Pleural effusion", "Pleural thickening", "Pneumothorax",
          "Pulmonary fibrosis", "Rib fracture", "Other lesion", "COPD", "Lung tumor", "Pneumonia", "Tuberculosis",
          "Other diseases", "No finding"]
A, B, C, D = ("000434271f63a053c4128a0ba6352c7f", "00053190460d56c53cc3e57321387478",
              "0005e8e3701dfb1dd93d53e2ff537b6e", "002a34c58c5b758217ed1f584ccbcfe9")
TRAIN_VOTES = [  # image, reader, positive labels
    (A, "R8", {"Cardiomegaly", "Aortic enlargement"}), (A, "R9", {"Cardiomegaly"}), (A, "R10", set()),
    (B, "R8", {"No finding"}), (B, "R9", {"No finding"}), (B, "R10", {"No finding"}),
    (C, "R1", {"Pleural effusion"}),
]
BOX_HEADER = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"]
TRAIN_BOXES = [
    [A, "R8", "Cardiomegaly", "30", "60", "90", "100"], [A, "R9", "Cardiomegaly", "40", "64", "96", "96"],
    [A, "R8", "Aortic enlargement", "70", "20", "90", "40"], [B, "R8", "No finding", "", "", "", ""],
    [C, "R1", "Pleural effusion", "0", "100", "20", "128"],
]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def write_vindr(root: Path, votes=TRAIN_VOTES, boxes=TRAIN_BOXES) -> Path:
    dicom = get_testdata_file("CT_small.dcm")  # a real 128 x 128 MONOCHROME2 file
    for split, ids in (("train", (A, B, C)), ("test", (D,))):
        for image_id in ids:
            (root / split).mkdir(parents=True, exist_ok=True)
            shutil.copy(dicom, root / split / f"{image_id}.dicom")
    _write(root / "annotations/image_labels_train.csv", ["image_id", "rad_id", *LABELS],
           [[i, r, *("1" if name in positive else "0" for name in LABELS)] for i, r, positive in votes])
    _write(root / "annotations/image_labels_test.csv", ["image_id", *LABELS],
           [[D, *("1" if name == "Nodule/Mass" else "0" for name in LABELS)]])
    _write(root / "annotations/annotations_train.csv", BOX_HEADER, boxes)
    _write(root / "annotations/annotations_test.csv", BOX_HEADER, [[D, "R11", "Nodule/Mass", "8", "8", "24", "24"]])
    return root


def _config(root: Path, **extra) -> dict:
    return {"name": "vindr_cxr", "task": "multilabel", "root": str(root), "image_size": 32, "augment": {},
            "build_workers": 1, **extra}


def _covered(boxes: list[tuple[int, int, int, int]], scale: int = 4) -> np.ndarray:
    """Output pixels (of 128 / scale) that any box (x0, y0, x1, y1 at 128 px) overlaps: interval arithmetic."""
    side = 128 // scale
    mask = np.zeros((side, side), np.uint8)
    for x0, y0, x1, y1 in boxes:
        for r in range(side):
            for c in range(side):
                if r * scale < y1 and (r + 1) * scale > y0 and c * scale < x1 and (c + 1) * scale > x0:
                    mask[r, c] = 1
    return mask


@pytest.mark.parametrize(("rule", "aortic"), [("any", 1.0), ("majority", 0.0)])
def test_reader_votes_labels_and_splits(tmp_path: Path, rule: str, aortic: float):
    listing = list_samples(parse_settings(_config(write_vindr(tmp_path), readers=rule)))
    assert listing.class_names == LABELS[:-1] and "No finding" not in listing.class_names
    targets = {s.group: dict(zip(listing.class_names, s.targets)) for s in listing.samples}
    assert targets[A]["Cardiomegaly"] == 1.0 and targets[A]["Aortic enlargement"] == aortic
    assert sum(targets[A].values()) == 1.0 + aortic
    assert sum(targets[B].values()) == 0.0  # every reader: No finding
    assert targets[C]["Pleural effusion"] == 1.0  # its only reader: a majority of one
    assert targets[D]["Nodule/Mass"] == 1.0 and sum(targets[D].values()) == 1.0
    assert {s.group: s.split for s in listing.samples} == {A: "train", B: "train", C: "train", D: "test"}


def test_dicom_boxes_as_per_finding_masks(tmp_path: Path):
    root = write_vindr(tmp_path)
    findings = ["Cardiomegaly", "Aortic enlargement", "Nodule/Mass"]
    dm = build_datamodule(_config(root, readers="majority", findings=findings, split=[0.5, 0.5]))
    dm.setup()
    assert dm.mask_kinds == ["box"] and pydicom.dcmread(root / "train" / f"{A}.dicom").Rows == 128
    items = {dm.split_ids[s][i]: dataset[i] for s, dataset in (("train", dm.train_dataset), ("val", dm.val_dataset),
                                                                  ("test", dm.test_dataset))
             for i in range(len(dataset))}
    a = items[f"train/{A}.dicom"]["masks"]["box"].numpy()
    np.testing.assert_array_equal(a[0], _covered([(30, 60, 90, 100), (40, 64, 96, 96)]))  # both readers' boxes
    assert not a[1].any()  # Aortic enlargement: one reader of three, not a majority, so no box
    np.testing.assert_array_equal(items[f"test/{D}.dicom"]["masks"]["box"].numpy()[2], _covered([(8, 8, 24, 24)]))
    assert items[f"train/{A}.dicom"]["image"].shape == (1, 32, 32)


@pytest.mark.parametrize(("votes", "boxes", "where", "column"), [
    ([*TRAIN_VOTES[:6], (C, "R1", {"Edema"}), (C, "R2", set())], TRAIN_BOXES, "image_labels_train.csv", None),
    (TRAIN_VOTES, [*TRAIN_BOXES, [C, "R1", "Pleural effusion", "0", "abc", "20", "128"]],
     "annotations_train.csv:7", "'y_min'"),
    (TRAIN_VOTES, [*TRAIN_BOXES, [C, "R1", "Pleural effusions", "0", "1", "20", "128"]],
     "annotations_train.csv:7", "'class_name'"),
])
def test_bad_rows_are_one_line(tmp_path: Path, votes, boxes, where, column):
    root = write_vindr(tmp_path, votes, boxes)
    if column is None:  # a vote that is neither 0 nor 1
        table = root / "annotations/image_labels_train.csv"
        table.write_text(table.read_text().replace(f"{C},R2,0,", f"{C},R2,2,"))
        where, column = "image_labels_train.csv:9", "'Aortic enlargement'"
    with pytest.raises(DataError) as error:
        list_samples(parse_settings(_config(root)))
    assert "\n" not in str(error.value) and f"{where}: column {column}" in str(error.value)
