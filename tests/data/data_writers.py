"""Write tiny datasets in the exact on-disk formats the readers expect (PNG, JPEG, DICOM, MATLAB v7.3)."""

from pathlib import Path

import cv2
import h5py
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """8- or 16-bit grey, RGB or RGBA PNG (pixels in RGB(A) order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), pixels)
    return path


def write_jpeg(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
    return path


def write_dicom(path: Path, pixels: np.ndarray, photometric: str = "MONOCHROME2",
                window: tuple[float, float] | None = None) -> Path:
    """Uncompressed 16-bit unsigned DICOM, optionally with a window centre / width."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientID = "P1"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _matlab_char(text: str) -> np.ndarray:
    return np.array([[ord(c)] for c in text], dtype=np.uint16)


def write_cjdata_mat(path: Path, image: np.ndarray, label: int, pid: str, mask: np.ndarray) -> Path:
    """A figshare brain-tumour file as MATLAB -v7.3 writes it: HDF5 with a 512-byte user block, struct
    `cjdata`, column-major arrays (HDF5 shape = transposed MATLAB shape), chars as uint16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as mat:
        cjdata = mat.create_group("cjdata")
        cjdata.attrs["MATLAB_class"] = np.bytes_("struct")
        fields = {
            "image": (image.astype(np.int16).T, "int16"),
            "label": (np.array([[float(label)]]), "double"),
            "PID": (_matlab_char(pid), "char"),
            "tumorMask": (mask.astype(np.uint8).T, "logical"),
            "tumorBorder": (np.array([[1.0, 2.0, 3.0, 4.0]]).T, "double"),
        }
        for name, (values, matlab_class) in fields.items():
            dataset = cjdata.create_dataset(name, data=values)
            dataset.attrs["MATLAB_class"] = np.bytes_(matlab_class)
    with open(path, "r+b") as f:  # MATLAB's user block starts with its text header
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")
    return path


def gradient_image(size: int, seed: int, dtype=np.uint8) -> np.ndarray:
    """A non-symmetric test image (orientation errors show) with some noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    base = (rows * 3 + cols) / (4 * (size - 1))
    top = np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else 1.0
    return np.clip(base * top * 0.9 + rng.integers(0, top // 20 + 1, (size, size)), 0, top).astype(dtype)


def write_covid_radiography(root: Path, per_class: dict[str, int], image_size: int = 40,
                            mask_size: int = 32) -> Path:
    """`<root>/<Class>/images/<Class>-<i>.png` and same-named masks of another size in `masks/`."""
    for class_name, count in per_class.items():
        for i in range(1, count + 1):
            name = f"{class_name}-{i}.png"
            write_png(root / class_name / "images" / name, gradient_image(image_size, seed=i))
            mask = np.zeros((mask_size, mask_size), np.uint8)
            mask[: mask_size // 2, : mask_size // 4] = 255  # top-left quarter-width block
            write_png(root / class_name / "masks" / name, mask)
    return root


def write_class_folders(root: Path, per_class: dict[str, int], size: int = 36) -> Path:
    for class_name, count in per_class.items():
        for i in range(count):
            write_png(root / class_name / f"img_{i:03d}.png", gradient_image(size, seed=i))
    return root
