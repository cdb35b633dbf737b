"""CheXpert and MIMIC-CXR-JPG, written in their distributed layouts: uncertainty policies, views, groups, splits."""

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from data_writers import write_jpeg

from heatlens.data import build_datamodule
from heatlens.data.errors import DataError
from heatlens.data.formats import list_samples
from heatlens.data.settings import parse_settings

NAN = np.nan
OBSERVATIONS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
                "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
                "Fracture", "Support Devices"]
CHEXPERT_HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS]
FIVE = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
TRAIN = [  # path below CheXpert-v1.0-small/, view, {observation: value as written}
    ("train/patient00001/study1/view1_frontal.jpg", "Frontal", {"Cardiomegaly": "1.0", "Edema": "-1.0",
                                                                 "Pleural Effusion": "0.0"}),
    ("train/patient00001/study1/view2_lateral.jpg", "Lateral", {"Cardiomegaly": "1.0"}),
    ("train/patient00002/study1/view1_frontal.jpg", "Frontal", {"No Finding": "1.0"}),
    ("train/patient00003/study2/view1_frontal.jpg", "Frontal", {"Atelectasis": "-1.0", "Consolidation": "1.0"}),
]
VALID = [("valid/patient64541/study1/view1_frontal.jpg", "Frontal",
          {**{o: "0.0" for o in OBSERVATIONS}, "Edema": "1.0"})]


def _write_csv(path: Path, header: list[str], rows: list[list[str]], gz: bool = False) -> None:
    opener = gzip.open(path.with_name(path.name + ".gz"), "wt", newline="") if gz else open(path, "w", newline="")
    with opener as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_chexpert(parent: Path, train=TRAIN) -> Path:
    root = parent / "CheXpert-v1.0-small"
    for table, rows in (("train.csv", train), ("valid.csv", VALID)):
        lines = []
        for path, view, values in rows:
            write_jpeg(root / path, np.full((32, 32), 128, np.uint8))
            lines.append([f"CheXpert-v1.0-small/{path}", "Female", "68", view, "AP" if view == "Frontal" else "",
                          *(values.get(o, "") for o in OBSERVATIONS)])
        _write_csv(root / table, CHEXPERT_HEADER, lines)
    return root


def _chexpert(root: Path, **extra):
    return list_samples(parse_settings({"name": "chexpert", "task": "multilabel", "root": str(root),
                                        "findings": FIVE, **extra}))


@pytest.mark.parametrize(("policy", "uncertain"), [("ignore", NAN), ("ones", 1.0), ("zeros", 0.0)])
def test_chexpert_uncertainty_policies_and_blanks(tmp_path: Path, policy: str, uncertain: float):
    listing = _chexpert(write_chexpert(tmp_path), uncertain=policy)
    assert listing.class_names == FIVE and listing.task == "multilabel"
    matrix = np.array([s.targets for s in listing.samples])
    np.testing.assert_array_equal(matrix, [  # Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion
        [NAN, 1.0, NAN, uncertain, 0.0],
        [NAN, NAN, NAN, NAN, NAN],  # No Finding only: the five are unmentioned, so unknown
        [uncertain, NAN, 1.0, NAN, NAN],
        [0.0, 0.0, 0.0, 1.0, 0.0],
    ])


def test_chexpert_views_groups_and_splits(tmp_path: Path):
    root = write_chexpert(tmp_path)
    frontal = _chexpert(root)
    assert [s.group for s in frontal.samples] == ["patient00001", "patient00002", "patient00003", "patient64541"]
    assert [s.split for s in frontal.samples] == ["train", "train", "train", "test"]
    assert frontal.samples[0].id == "train/patient00001/study1/view1_frontal.jpg"
    every = _chexpert(root, views="all")
    assert len(every.samples) == 5 and every.samples[1].id.endswith("view2_lateral.jpg")
    assert len(list_samples(parse_settings({"name": "chexpert", "task": "multilabel", "root": str(root)}))
               .class_names) == 13


@pytest.mark.parametrize(("row", "column"), [
    (("train/patient00004/study1/view1_frontal.jpg", "Frontal", {"Edema": "2.0"}), "'Edema'"),
    (("train/patient00004/study1/view1_frontal.jpg", "Oblique", {}), "'Frontal/Lateral'"),
    (("train/anonymous/study1/view1_frontal.jpg", "Frontal", {}), "'Path'"),
])
def test_chexpert_bad_row_is_one_line(tmp_path: Path, row, column):
    root = write_chexpert(tmp_path, [*TRAIN, row])
    with pytest.raises(DataError) as error:
        _chexpert(root)
    assert "\n" not in str(error.value) and f"{root / 'train.csv'}:6: column {column}" in str(error.value)


MIMIC_FINDINGS = sorted(OBSERVATIONS)  # the labels file's columns are alphabetical
STUDIES = [  # subject, study, {finding: value}
    ("10000032", "50414267", {"Edema": "1.0", "Pneumonia": "-1.0"}),
    ("10000764", "57375967", {"Cardiomegaly": "0.0", "Lung Opacity": "1.0"}),
    ("10000898", "50771383", {"No Finding": "1.0"}),
]
IMAGES = [  # dicom_id, subject, study, view, split
    ("02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", "10000032", "50414267", "PA", "train"),
    ("174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962", "10000032", "50414267", "LATERAL", "train"),
    ("68b5c4b1-227d0485-9cc38c3f-7b84ab51-4b472714", "10000764", "57375967", "AP", "validate"),
    ("fffabebf-74fd3a1f-673b6b41-96ec0ac9-2ab69818", "10000898", "50771383", "PA", "test"),
    ("ea030e7a-2e3b1346-bc518786-7a8fd698-f673b44c", "10000935", "51178377", "PA", "train"),  # study unlabelled
]


def write_mimic(root: Path, images=IMAGES) -> Path:
    for dicom, subject, study, _, _ in images:
        write_jpeg(root / f"files/p{subject[:2]}/p{subject}/s{study}/{dicom}.jpg", np.full((32, 32), 90, np.uint8))
    _write_csv(root / "mimic-cxr-2.0.0-chexpert.csv", ["subject_id", "study_id", *MIMIC_FINDINGS],
               [[s, t, *(v.get(f, "") for f in MIMIC_FINDINGS)] for s, t, v in STUDIES], gz=True)
    _write_csv(root / "mimic-cxr-2.0.0-split.csv", ["dicom_id", "study_id", "subject_id", "split"],
               [[d, t, s, split] for d, s, t, _, split in images], gz=True)
    _write_csv(root / "mimic-cxr-2.0.0-metadata.csv",
               ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
                "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"],
               [[d, s, t, "CHEST (PA AND LAT)", v, "32", "32", "21800506", "213014.531", "CHEST (PA AND LAT)",
                 "postero-anterior", "Erect"] for d, s, t, v, _ in images])
    return root


def test_mimic_labels_views_splits_and_subjects(tmp_path: Path):
    root = write_mimic(tmp_path)
    config = {"name": "mimic_cxr", "task": "multilabel", "root": str(root), "uncertain": "zeros",
              "findings": ["Edema", "Pneumonia", "Lung Opacity", "Cardiomegaly"]}
    listing = list_samples(parse_settings(config))
    assert [s.id for s in listing.samples] == [f"files/p{s[:2]}/p{s}/s{t}/{d}.jpg"
                                               for d, s, t, v, _ in IMAGES[:4] if v != "LATERAL"]
    np.testing.assert_array_equal(np.array([s.targets for s in listing.samples]),
                                  [[1.0, 0.0, NAN, NAN], [NAN, NAN, 1.0, 0.0], [NAN, NAN, NAN, NAN]])
    assert [(s.group, s.split) for s in listing.samples] == [("10000032", "train"), ("10000764", "val"),
                                                             ("10000898", "test")]
    assert len(list_samples(parse_settings({**config, "views": "all"})).samples) == 4
    dm = build_datamodule({**config, "image_size": 32, "augment": {}, "build_workers": 1, "views": "all"})
    dm.setup()
    assert {s: len(dm.split_ids[s]) for s in ("train", "val", "test")} == {"train": 2, "val": 1, "test": 1}


def test_mimic_bad_split_value_names_file_row_column(tmp_path: Path):
    root = write_mimic(tmp_path, [*IMAGES[:2], ("68b5c4b1", "10000764", "57375967", "AP", "dev")])
    with pytest.raises(DataError, match=r"mimic-cxr-2.0.0-split.csv.gz:4: column 'split': 'dev'"):
        list_samples(parse_settings({"name": "mimic_cxr", "task": "multilabel", "root": str(root)}))


def test_chexpert_missing_image_is_named_or_skipped(tmp_path: Path):
    root = write_chexpert(tmp_path)
    missing = root / "train/patient00002/study1/view1_frontal.jpg"
    missing.unlink()
    with pytest.raises(DataError, match=rf"train.csv:4: image file not found: {missing}"):
        _chexpert(root)
    dm = build_datamodule({"name": "chexpert", "task": "multilabel", "root": str(root), "image_size": 32,
                           "augment": {}, "build_workers": 1, "on_bad_image": "skip", "split": [0.5, 0.5]})
    dm.setup()
    assert [s["file"] for s in dm.skipped] == [str(missing)]
    assert sorted(sum((dm.split_ids[s] for s in ("train", "test")), [])) == [
        "train/patient00001/study1/view1_frontal.jpg", "train/patient00003/study2/view1_frontal.jpg",
        "valid/patient64541/study1/view1_frontal.jpg"]
