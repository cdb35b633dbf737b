"""Decode any supported file into one representation: a square uint8 array (size, size, channels).

PNG (8/16-bit), JPEG, BMP, TIFF through OpenCV; DICOM through pydicom (modality LUT, window,
MONOCHROME1 inverted); MATLAB v7.3 `.mat` (HDF5) fields through h5py.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from heatlens.data.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}


@dataclass(frozen=True)
class Source:
    """Where one image or mask lives: a file, or a dataset inside an HDF5 (.mat v7.3) file."""

    path: Path
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.field}" if self.field else str(self.path)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale any numeric array to uint8; wider ranges (16-bit PNG, MRI int16, DICOM) by min-max."""
    if pixels.dtype == np.uint8:
        return pixels
    pixels = pixels.astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return np.rint((pixels - low) * (255.0 / (high - low))).astype(np.uint8)


def _read_raster(path: Path) -> np.ndarray:
    # imdecode on bytes instead of imread: OpenCV's imread cannot open non-ASCII paths on every OS.
    pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    if pixels.ndim == 3:
        colour = cv2.COLOR_BGRA2RGB if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB
        pixels = cv2.cvtColor(pixels, colour)
    return pixels


def _read_dicom(path: Path) -> np.ndarray:
    dataset = pydicom.dcmread(path)
    pixels = apply_modality_lut(dataset.pixel_array, dataset)
    pixels = apply_voi_lut(pixels, dataset)  # window centre / width or VOI LUT when present
    if dataset.get("PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels  # MONOCHROME1: high values are dark
    return _to_uint8(np.asarray(pixels))


def _read_mat_field(path: Path, field: str) -> np.ndarray:
    with h5py.File(path, "r") as mat:
        if field not in mat:
            raise DataError(f"{path}: has no field {field!r} (MATLAB v7.3 file expected)")
        # MATLAB writes column-major: the HDF5 dataset is the transpose of the MATLAB matrix.
        return np.asarray(mat[field]).T


def read_pixels(source: Source) -> np.ndarray:
    """Raw pixels of one file as a 2-D (grey) or (H, W, 3) RGB array, dtype as stored."""
    path = source.path
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if source.field is not None:
            return _read_mat_field(path, source.field)
        if path.suffix.lower() in {".dcm", ".dicom"}:
            return _read_dicom(path)
        return _read_raster(path)
    except DataError:
        raise
    except Exception as error:  # the decoders raise many types; the user needs the file name
        raise DataError(f"{source}: cannot decode ({type(error).__name__}: {error})") from error


def _square(pixels: np.ndarray, size: int, interpolation: int) -> np.ndarray:
    if pixels.shape[:2] == (size, size):
        return pixels
    return cv2.resize(pixels, (size, size), interpolation=interpolation)


def load_image(source: Source, size: int, channels: int) -> np.ndarray:
    """Decode, convert to `channels` (1 or 3) and resize to (size, size, channels) uint8."""
    pixels = read_pixels(source)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3):
        raise DataError(f"{source}: expected a 2-D image, got an array of shape {pixels.shape}")
    pixels = _to_uint8(pixels)
    shrink = pixels.shape[0] > size or pixels.shape[1] > size
    pixels = _square(pixels, size, cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if channels == 1 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., None]
    elif channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def load_mask(source: Source, size: int) -> np.ndarray:
    """Decode a mask into (size, size) uint8 in {0, 1}."""
    pixels = read_pixels(source)
    if pixels.ndim == 3:
        pixels = pixels.max(axis=2)
    peak = float(pixels.max())
    # Half the peak separates 0/1, 0/255 and JPEG-blurred masks alike.
    foreground = (pixels > 0.5 * peak).astype(np.float32) if peak > 0 else np.zeros(pixels.shape, np.float32)
    # Area-average then threshold: masks of another size (256 px masks for 299 px images) keep their shape.
    return (_square(foreground, size, cv2.INTER_AREA) >= 0.5).astype(np.uint8)
