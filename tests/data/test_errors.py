"""Bad input: one DataError whose message names the file, row, key or value at fault."""

from pathlib import Path

import numpy as np
import pytest
from data_writers import write_class_folders, write_covid_radiography, write_png

from heatlens.data import DataError, build_datamodule


def _config(name: str, root: Path | None, **extra) -> dict:
    return {"name": name, "root": str(root) if root else None, "image_size": 32, "augment": {}, **extra}


def _setup(cfg: dict):
    dm = build_datamodule(cfg)
    dm.setup()
    return dm


def test_corrupt_image_names_the_file(tmp_path: Path):
    root = write_class_folders(tmp_path / "f", {"a": 3, "b": 3})
    bad = root / "b" / "img_001.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError, match=rf"{bad}: not a readable image"):
        _setup(_config("image_folder", root))


def test_empty_class_folder_names_the_folder(tmp_path: Path):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 2, "Normal": 2})
    (root / "Viral Pneumonia" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"Viral Pneumonia/images: empty class folder"):
        _setup(_config("covid_radiography", root))
    folders = write_class_folders(tmp_path / "f", {"a": 2})
    (folders / "b").mkdir()
    with pytest.raises(DataError, match=rf"{folders / 'b'}: empty class folder"):
        _setup(_config("image_folder", folders))


def test_csv_row_pointing_at_a_missing_file_names_the_row(tmp_path: Path):
    root = write_class_folders(tmp_path / "c", {"a": 2, "b": 2})
    (root / "labels.csv").write_text("path,label\na/img_000.png,a\nb/gone.png,b\n")
    with pytest.raises(DataError, match=rf"{root / 'labels.csv'}:3: image file not found: .*gone.png"):
        _setup(_config("csv", root))


def test_unknown_label_names_the_row_and_label(tmp_path: Path):
    root = write_class_folders(tmp_path / "c", {"a": 2, "b": 2})
    (root / "labels.csv").write_text("path,label\na/img_000.png,a\nb/img_000.png,zebra\n")
    with pytest.raises(DataError, match=r"labels\.csv:3: unknown label 'zebra'"):
        _setup(_config("csv", root, classes=["a", "b"]))


def test_csv_missing_column_and_bad_split_value(tmp_path: Path):
    root = write_class_folders(tmp_path / "c", {"a": 2})
    (root / "labels.csv").write_text("file,label\na/img_000.png,a\n")
    with pytest.raises(DataError, match=r"labels\.csv: missing column\(s\) \['path'\]"):
        _setup(_config("csv", root))
    (root / "labels.csv").write_text("path,label,split\na/img_000.png,a,train\na/img_001.png,a,later\n")
    with pytest.raises(DataError, match=r"labels\.csv:3: split 'later'"):
        _setup(_config("csv", root))


def test_mask_matching_no_image_names_the_mask(tmp_path: Path):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 2, "Normal": 2})
    stray = write_png(root / "Normal" / "masks" / "Normal-99.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=rf"{stray}: mask matches no image"):
        _setup(_config("covid_radiography", root))


def test_folder_with_no_images(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"data\.root=.*empty: no class folders"):
        _setup(_config("covid_radiography", tmp_path / "empty"))
    with pytest.raises(DataError, match=r"data\.root=.*empty: no \.mat files"):
        _setup(_config("brain_tumor", tmp_path / "empty"))
    with pytest.raises(DataError, match=r"data\.root=.*nowhere: folder not found"):
        _setup(_config("image_folder", tmp_path / "nowhere"))


def test_not_a_mat_v73_file_names_it(tmp_path: Path):
    bad = tmp_path / "mri" / "1.mat"
    bad.parent.mkdir()
    bad.write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(DataError, match=rf"{bad}: not a MATLAB v7.3"):
        _setup(_config("brain_tumor", bad.parent))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "covid_radiography", "root": None}, r"data\.root: required for data=covid_radiography"),
        ({"channels": 2}, r"data\.channels=2: expected 1 or 3"),
        ({"balance": "oversample"}, r"data\.balance='oversample'"),
        ({"on_bad_image": "ignore"}, r"data\.on_bad_image='ignore'"),
        ({"split": [0.9, 0.3]}, r"data\.split="),
        ({"image_size": "big"}, r"data\.image_size='big'"),
        ({"format": "nifti"}, r"data\.format='nifti'"),
        ({"name": None}, r"data\.name: missing"),
    ],
)
def test_bad_config_values_name_the_key(overrides: dict, message: str):
    cfg = {**_config("phantom", None), **overrides}
    with pytest.raises(DataError, match=message):
        build_datamodule(cfg)


def test_bad_augmentation_names_the_key(tmp_path: Path):
    root = write_class_folders(tmp_path / "f", {"a": 4, "b": 4})
    with pytest.raises(DataError, match=r"data\.augment\.Sharpenn: not an albumentations transform"):
        _setup(_config("image_folder", root, augment={"Sharpenn": {"p": 1.0}}))
    with pytest.raises(DataError, match=r"data\.augment\.Affine: invalid arguments"):
        _setup(_config("image_folder", root, augment={"Affine": {"rotat": 5}}))


def test_healthy_class_and_normalisation_mismatch(tmp_path: Path):
    root = write_class_folders(tmp_path / "f", {"a": 4, "b": 4})
    with pytest.raises(DataError, match=r"data\.healthy_class='Normal': not one of the classes \['a', 'b'\]"):
        _setup(_config("image_folder", root, healthy_class="Normal"))
    with pytest.raises(DataError, match=r"need 3 value\(s\) each to match data\.channels=3"):
        build_datamodule(_config("image_folder", root, channels=3), mean=(0.5,), std=(0.5,))


def test_skip_with_every_image_bad_still_stops(tmp_path: Path):
    root = write_class_folders(tmp_path / "f", {"a": 2, "b": 2})
    for path in root.rglob("*.png"):
        path.write_bytes(b"broken")
    with pytest.raises(DataError, match=r"every image was bad.*not a readable image"):
        _setup(_config("image_folder", root, on_bad_image="skip"))
