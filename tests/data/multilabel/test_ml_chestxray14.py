"""ChestX-ray14 and multi-label CSV manifests, written in their distributed layouts, load to the right labels."""

from pathlib import Path

import numpy as np
import pytest
from data_writers import write_png

from heatlens.data import build_datamodule
from heatlens.data.errors import DataError
from heatlens.data.formats import list_samples
from heatlens.data.settings import parse_settings

# The header as NIH distributes it: the bracketed names split into extra columns.
ENTRY_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
                "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
ENTRIES = [  # image, Finding Labels, patient, view, images folder
    ("00000001_000.png", "Cardiomegaly", 1, "PA", "images_001"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, "PA", "images_001"),
    ("00000002_000.png", "No Finding", 2, "AP", "images_001"),
    ("00000003_000.png", "Effusion|Infiltration|Mass", 3, "PA", "images_002"),
    ("00000004_000.png", "Hernia", 4, "PA", "images_002"),
]
BOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
BOXES = ["00000003_000.png,Infiltrate,8,4,8,12,,,", "00000003_000.png,Mass,16.5,16.5,7.25,7.25,,,"]


def write_chestxray14(root: Path, entries=ENTRIES, boxes=BOXES) -> Path:
    rng = np.random.default_rng(0)
    lines = [ENTRY_HEADER]
    for index, (name, findings, patient, view, folder) in enumerate(entries):
        write_png(root / folder / "images" / name, rng.integers(0, 256, (32, 32), dtype=np.uint8))
        lines.append(f"{name},{findings},{index},{patient},58,M,{view},32,32,0.143,0.143")
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(e[0] for e in entries if not e[0].startswith("00000003")))
    (root / "test_list.txt").write_text("00000003_000.png\n")
    (root / "BBox_List_2017.csv").write_text("\n".join([BOX_HEADER, *boxes]) + "\n")
    return root


def _config(root: Path, **extra) -> dict:
    return {"name": "chestxray14", "task": "multilabel", "root": str(root), "image_size": 32, "augment": {},
            "build_workers": 1, **extra}


def test_labels_groups_and_official_split(tmp_path: Path):
    listing = list_samples(parse_settings(_config(write_chestxray14(tmp_path))))
    assert listing.task == "multilabel" and len(listing.class_names) == 14 and "No Finding" not in listing.class_names
    by_name = {Path(s.id).name: s for s in listing.samples}
    names = listing.class_names
    expected = {"00000001_000.png": {"Cardiomegaly"}, "00000001_001.png": {"Cardiomegaly", "Emphysema"},
                "00000002_000.png": set(), "00000003_000.png": {"Effusion", "Infiltration", "Mass"},
                "00000004_000.png": {"Hernia"}}
    for name, positives in expected.items():
        assert by_name[name].targets == tuple(1.0 if f in positives else 0.0 for f in names)
    assert by_name["00000003_000.png"].id == "images_002/images/00000003_000.png"
    assert by_name["00000001_000.png"].group == by_name["00000001_001.png"].group != by_name["00000002_000.png"].group
    assert {n: s.split for n, s in by_name.items()} == {**{n: "train" for n in expected}, "00000003_000.png": "test"}


def test_box_masks_per_finding_channel(tmp_path: Path):
    dm = build_datamodule(_config(write_chestxray14(tmp_path), findings=["Mass", "Infiltration", "Effusion"]))
    dm.setup()
    assert dm.class_names == ["Mass", "Infiltration", "Effusion"] and dm.mask_kinds == ["box"]
    item = dm.test_dataset[0]
    np.testing.assert_array_equal(item["label"].numpy(), [1.0, 1.0, 1.0])
    boxes = item["masks"]["box"].numpy()
    assert boxes.shape == (3, 32, 32)
    infiltration = np.zeros((32, 32), np.uint8)
    infiltration[4:16, 8:16] = 1  # x 8, y 4, w 8, h 12 at the image's own 32 px
    mass = np.zeros((32, 32), np.uint8)
    mass[16:24, 16:24] = 1  # 16.5 .. 23.75: every pixel the box touches
    np.testing.assert_array_equal(boxes[1], infiltration)
    np.testing.assert_array_equal(boxes[0], mass)
    assert not boxes[2].any()  # Effusion: positive, but no box known
    for row in range(len(dm.train_dataset)):
        assert not dm.train_dataset[row]["masks"]["box"].any()


@pytest.mark.parametrize(("entries", "boxes", "where", "column"), [
    ([*ENTRIES[:2], ("00000002_000.png", "Cardiomegaly|Flu", 2, "AP", "images_001")], BOXES,
     "Data_Entry_2017_v2020.csv:4", "'Finding Labels'"),
    ([*ENTRIES[:4], ("00000004_000.png", "Hernia", "", "PA", "images_002")], BOXES,
     "Data_Entry_2017_v2020.csv:6", "'Patient ID'"),
    (ENTRIES, [BOXES[0], "00000003_000.png,Mass,1,2,three,4,,,"], "BBox_List_2017.csv:3", "'w'"),
    (ENTRIES, ["00000003_000.png,Tumour,1,2,3,4,,,"], "BBox_List_2017.csv:2", "'Finding Label'"),
])
def test_a_bad_row_is_one_line_naming_file_row_and_column(tmp_path: Path, entries, boxes, where, column):
    root = write_chestxray14(tmp_path, entries, boxes)
    with pytest.raises(DataError) as error:
        list_samples(parse_settings(_config(root)))
    message = str(error.value)
    assert "\n" not in message and str(root / where) in message and column in message


def test_missing_image_is_named(tmp_path: Path):
    root = write_chestxray14(tmp_path)
    (root / "images_002" / "images" / "00000004_000.png").unlink()
    with pytest.raises(DataError, match=r"Data_Entry_2017_v2020.csv:6: image file not found: .*00000004_000.png"):
        list_samples(parse_settings(_config(root)))


def _manifest(root: Path, text: str) -> Path:
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png", "c.png"):
        write_png(root / name, rng.integers(0, 256, (32, 32), dtype=np.uint8))
    (root / "labels.csv").write_text(text)
    return root


def test_csv_joined_names_and_finding_columns(tmp_path: Path):
    joined = _manifest(tmp_path / "joined", "path,label,group\na.png,Edema|Effusion,p1\nb.png,No Finding,p2\n"
                                            "c.png,Effusion,p3\n")
    listing = list_samples(parse_settings({"name": "csv", "task": "multilabel", "root": str(joined)}))
    assert listing.class_names == ["Edema", "Effusion"]
    assert [s.targets for s in listing.samples] == [(1.0, 1.0), (0.0, 0.0), (0.0, 1.0)]
    columns = _manifest(tmp_path / "columns", "path,Edema,Effusion\na.png,1,0\nb.png,,-1\nc.png,0,1\n")
    for policy, b_effusion in (("ignore", np.nan), ("ones", 1.0), ("zeros", 0.0)):
        listing = list_samples(parse_settings({"name": "csv", "task": "multilabel", "root": str(columns),
                                               "classes": ["Effusion", "Edema"], "uncertain": policy}))
        matrix = np.array([s.targets for s in listing.samples])
        np.testing.assert_array_equal(matrix, [[0.0, 1.0], [b_effusion, np.nan], [1.0, 0.0]])
    with pytest.raises(DataError, match=r"labels.csv:3: column 'Edema': 'maybe' is not 1, 0, -1 or blank"):
        bad = _manifest(tmp_path / "bad", "path,Edema\na.png,1\nb.png,maybe\n")
        list_samples(parse_settings({"name": "csv", "task": "multilabel", "root": str(bad), "classes": ["Edema"]}))
