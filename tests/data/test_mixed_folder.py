"""A folder mixing `.dcm`, suffix-less DICOM, `.IMA`, PNG and JPEG lists, decodes and batches; under skip, corrupt
and multi-frame (dicom_frame=error) files are listed in `datamodule.skipped` and everything else goes on."""

from pathlib import Path

import numpy as np
import pytest
from data_writers import gradient_image, write_dicom, write_mixed_folder

from heatlens.data import DataError, build_datamodule
from heatlens.data.folders import list_image_folder
from heatlens.data.tables import list_csv


def _config(root: Path, **extra) -> dict:
    return {"name": "image_folder", "root": str(root), "image_size": 48, "channels": 1, "batch_size": 4,
            "augment": {}, "split": [0.5, 0.25, 0.25], "resize": "pad", **extra}


def _min_max(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return np.rint((values - values.min()) * (255.0 / (values.max() - values.min()))).astype(np.uint8)


def test_mixed_folder_lists_every_image_and_nothing_else(tmp_path: Path):
    written = write_mixed_folder(tmp_path / "mixed", per_class=10)
    listing = list_image_folder(tmp_path / "mixed")
    assert sorted(s.id for s in listing.samples) == sorted(written)
    assert {Path(i).suffix for i in written} >= {".png", ".jpg", ".dcm", ".IMA", ""}
    assert listing.class_names == ["normal", "pneumonia"]


def test_mixed_folder_decodes_each_format_and_batches(tmp_path: Path):
    written = write_mixed_folder(tmp_path / "mixed", per_class=10)
    dm = build_datamodule(_config(tmp_path / "mixed"))
    dm.setup()
    assert sorted(sum(dm.split_ids.values(), [])) == sorted(written) and dm.skipped == []
    cache = dm._cache()
    images, row = cache.images(), {i: r for r, i in enumerate(cache.ids)}
    for name, pixels in written.items():
        if name.endswith(".jpg"):
            continue  # lossy
        rows, cols = pixels.shape
        top, left = (48 - rows) // 2, (48 - cols) // 2  # letterbox; the longer side is 48 px: no scaling
        shown = pixels if pixels.dtype == np.uint8 else _min_max(pixels)
        decoded = images[row[name], ..., 0]
        assert np.array_equal(decoded[top:top + rows, left:left + cols], shown), name
        assert decoded.sum() == shown.astype(np.int64).sum()  # black outside the picture
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 48, 48)


def test_csv_manifest_reads_suffix_less_dicom(tmp_path: Path):
    root = tmp_path / "mixed"
    written = write_mixed_folder(root, per_class=5)
    dicoms = [name for name in written if Path(name).suffix == ""]
    (root / "labels.csv").write_text("path,label\n" + "".join(f"{n},{n.split('/')[0]}\n" for n in written))
    listing = list_csv(root, build_datamodule({**_config(root), "name": "csv"}).settings)
    assert len(listing.samples) == len(written) and dicoms
    dm = build_datamodule({**_config(root), "name": "csv", "split": [0.6, 0.2, 0.2]})
    dm.setup()
    assert sorted(sum(dm.split_ids.values(), [])) == sorted(written)


def _add_bad_files(root: Path) -> dict[str, str]:
    """A corrupt suffix-less DICOM, a multi-frame `.dcm`, a window width of 0 (pydicom raises ValueError)."""
    corrupt = root / "normal" / "CR9" / "6199"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 3)
    frames = write_dicom(root / "pneumonia" / "cine.dcm", np.stack([gradient_image(40, s, np.uint16) for s in range(4)]))
    window = write_dicom(root / "pneumonia" / "window.dcm", gradient_image(40, 7, np.uint16), window=(100, 0))
    return {str(corrupt): str(corrupt), str(frames): "multi-frame DICOM (4 frames)",
            str(window): "cannot decode (ValueError: The (0028,1051) Window Width"}


def test_skip_lists_bad_files_and_goes_on(tmp_path: Path, caplog):
    root = tmp_path / "mixed"
    written = write_mixed_folder(root, per_class=10)
    bad = _add_bad_files(root)
    dm = build_datamodule(_config(root, on_bad_image="skip", dicom_frame="error"))
    dm.setup()
    assert sorted(s["file"] for s in dm.skipped) == sorted(bad)
    for entry in dm.skipped:
        assert entry["error"].startswith(entry["file"] + ": ") and bad[entry["file"]] in entry["error"]
    assert sorted(sum(dm.split_ids.values(), [])) == sorted(written)
    assert "Skipped 3 bad image(s)" in caplog.text
    assert len(list(dm.train_dataloader())) > 0


def test_error_mode_stops_on_the_first_bad_file_naming_it(tmp_path: Path):
    root = tmp_path / "mixed"
    write_mixed_folder(root, per_class=4)
    bad = _add_bad_files(root)
    with pytest.raises(DataError) as error:
        build_datamodule(_config(root, dicom_frame="error")).setup()
    message = str(error.value)
    assert any(message.startswith(f"{path}: ") for path in bad) and "data.on_bad_image=skip" in message
    assert "\n" not in message
    middle = build_datamodule(_config(root, dicom_frame="middle", on_bad_image="skip"))
    middle.setup()  # the multi-frame file is now an image: only the two others are skipped
    assert sorted(s["file"] for s in middle.skipped) == sorted(p for p in bad if not p.endswith("cine.dcm"))
