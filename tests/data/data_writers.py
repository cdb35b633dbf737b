"""Write tiny datasets in the exact on-disk formats the readers expect (PNG, JPEG, DICOM, MATLAB v7.3)."""

from pathlib import Path

import cv2
import h5py
import numpy as np
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
                window: tuple[float, float] | None = None, rescale: tuple[float, float] | None = None,
                palette: np.ndarray | None = None) -> Path:
    """Uncompressed DICOM (PS3.10 file: preamble + DICM, whatever `path`'s suffix).

    `pixels`: (rows, cols) or (frames, rows, cols) grey, with a trailing 3 for RGB; its dtype sets the
    bits (uint8, uint16, int16 = signed). `window`: centre, width; `rescale`: slope, intercept;
    `palette`: (entries, 3) uint16 LUT for PALETTE COLOR.
    """
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
    colour = photometric == "RGB"
    frames = pixels.ndim == (4 if colour else 3)
    if frames:
        ds.NumberOfFrames = pixels.shape[0]
    ds.Rows, ds.Columns = pixels.shape[1:3] if frames else pixels.shape[:2]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = int(np.issubdtype(pixels.dtype, np.signedinteger))
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if palette is not None:
        for channel, name in enumerate(("Red", "Green", "Blue")):
            setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [len(palette), 0, 16])
            setattr(ds, f"{name}PaletteColorLookupTableData", palette[:, channel].astype("<u2").tobytes())
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
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


def write_mixed_folder(root: Path, per_class: int = 4) -> dict[str, np.ndarray]:
    """Two class folders mixing PNG, JPEG, `.dcm`, suffix-less DICOM (media names such as `CR1/6154`)
    and Siemens `.IMA`, 32-48 px of several aspect ratios, beside files that are not images (notes,
    a CSV, a hidden file, a DICOMDIR). Returns id -> the grey pixels written (DICOM: the stored values)."""
    written = {}
    for c, class_name in enumerate(("normal", "pneumonia")):
        for i in range(per_class):
            rows, cols = (32, 48) if i % 3 == 0 else (48, 40) if i % 3 == 1 else (48, 48)
            pixels = gradient_image(48, seed=10 * c + i)[:rows, :cols]
            if c == 1:
                pixels = pixels.copy()
                pixels[rows // 4:rows // 2, cols // 4:cols // 2] = 255  # class evidence: a bright block
            kind = i % 5
            if kind == 0:
                name = f"{class_name}/img{i}.png"
                write_png(root / name, pixels)
            elif kind == 1:
                name = f"{class_name}/img{i}.jpg"
                write_jpeg(root / name, pixels)
            else:
                name = {2: f"{class_name}/scan{i}.dcm", 3: f"{class_name}/CR{i}/61{i:02d}",
                        4: f"{class_name}/export{i}.IMA"}[kind]
                pixels = pixels.astype(np.uint16) * 16  # 12-bit range in 16-bit DICOM
                write_dicom(root / name, pixels)
            written[name] = pixels
        (root / class_name / "notes.txt").write_text("not an image\n")
        (root / class_name / ".DS_Store").write_bytes(b"\0" * 200)
    (root / "normal" / "labels.csv").write_text("path,label\n")
    write_dicom(root / "pneumonia" / "DICOMDIR", np.zeros((4, 4), np.uint16))  # a DICOM file, not an image
    return written


def write_block_images(root: Path, count: int, shape: tuple[int, int], block: tuple[int, int],
                       mask_shape: tuple[int, int] | None = None, seed: int = 0) -> Path:
    """covid_radiography layout, classes c0 / c1: dark images with one bright block at a random place and
    same-named masks of that block, stored at `mask_shape` (default: the image's shape)."""
    rng = np.random.default_rng(seed)
    mask_shape = mask_shape or shape
    for i in range(count):
        image = np.full(shape, 25, np.uint8)
        top, left = rng.integers(2, shape[0] - block[0] - 1), rng.integers(2, shape[1] - block[1] - 1)
        image[top:top + block[0], left:left + block[1]] = 225
        name = f"c{i % 2}/images/x{i}.png"
        write_png(root / name, image)
        scale_rows, scale_cols = mask_shape[0] / shape[0], mask_shape[1] / shape[1]
        mask = np.zeros(mask_shape, np.uint8)
        mask[round(top * scale_rows):round((top + block[0]) * scale_rows),
             round(left * scale_cols):round((left + block[1]) * scale_cols)] = 255
        write_png(root / name.replace("images", "masks"), mask)
    return root
