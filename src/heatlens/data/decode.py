"""Decode any supported file into one representation: a square uint8 array (size, size, channels).

PNG (8/16-bit), JPEG, BMP, TIFF through OpenCV; DICOM through pydicom (see `dicom`), recognised by
content whatever the suffix; MATLAB v7.3 `.mat` (HDF5) fields through h5py. Masks follow the image's
geometry exactly (`pixels.Placement`). Any failure while decoding a file, whatever raised it, is one
DataError naming that file.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np

from heatlens.data.dicom import FRAME_CHOICES, is_dicom, read_dicom
from heatlens.data.errors import DataError
from heatlens.data.pixels import RESIZE_MODES, Placement, to_uint8

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
# Never probed for DICOM content: what sits beside images in a dataset folder.
NOT_IMAGE_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".xml", ".yaml", ".yml", ".md", ".html", ".pdf",
                      ".py", ".ipynb", ".log", ".zip", ".gz", ".tar", ".7z", ".npy", ".npz", ".mat", ".h5",
                      ".xls", ".xlsx", ".doc", ".docx", ".db", ".sqlite", ".lock"}
DICOMDIR = "DICOMDIR"  # the index of DICOM media: a DICOM file, never an image


@dataclass(frozen=True)
class Source:
    """Where one image or mask lives: a file, or a dataset inside an HDF5 (.mat v7.3) file."""

    path: Path
    field: str | None = None
    # A mask drawn from boxes (x0, y0, x1, y1 in the image's own pixels) listed in `path` (an annotation file).
    boxes: tuple[tuple[float, float, float, float], ...] = ()

    def __str__(self) -> str:
        where = f"{self.path}:{self.field}" if self.field else str(self.path)
        return f"{where} boxes {list(self.boxes)}" if self.boxes else where


@dataclass(frozen=True)
class DecodeOptions:
    """Everything that changes the decoded pixels; all of it is part of the cache key."""

    size: int
    channels: int = 1
    resize: str = "pad"  # stretch | pad | crop
    dicom_frame: str = "middle"  # first | middle | error

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise DataError(f"data.resize={self.resize!r}: expected one of {list(RESIZE_MODES)}")
        if self.dicom_frame not in FRAME_CHOICES:
            raise DataError(f"data.dicom_frame={self.dicom_frame!r}: expected one of {list(FRAME_CHOICES)}")


def is_image_file(path: Path) -> bool:
    """Listed as an image: a known image suffix, or an unknown one (none, `.IMA`, a UID's last digits)
    with the DICOM marker inside. Hidden files and obvious non-images are never opened."""
    if path.name.startswith(".") or path.name.upper() == DICOMDIR:
        return False
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return True
    return suffix not in NOT_IMAGE_SUFFIXES and path.is_file() and is_dicom(path)


def _read_raster(path: Path) -> np.ndarray:
    # imdecode on bytes instead of imread: OpenCV's imread cannot open non-ASCII paths on every OS.
    pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    if pixels.ndim == 3:
        colour = cv2.COLOR_BGRA2RGB if pixels.shape[2] == 4 else cv2.COLOR_BGR2RGB
        pixels = cv2.cvtColor(pixels, colour)
    return pixels


def _read_mat_field(path: Path, field: str) -> np.ndarray:
    with h5py.File(path, "r") as mat:
        if field not in mat:
            raise DataError(f"{path}: has no field {field!r} (MATLAB v7.3 file expected)")
        # MATLAB writes column-major: the HDF5 dataset is the transpose of the MATLAB matrix.
        return np.asarray(mat[field]).T


def _one_line(error: BaseException, limit: int = 300) -> str:
    text = " ".join(str(error).split())  # pydicom's plugin reports span many lines
    return text if len(text) <= limit else text[:limit] + "..."


@contextmanager
def naming(source: Source) -> Iterator[None]:
    """Any exception inside becomes one DataError naming `source`."""
    try:
        yield
    except DataError as error:
        if str(source.path) in str(error):
            raise
        raise DataError(f"{source}: {error}") from error
    except Exception as error:  # the decoders raise many types; the user needs the file and the reason
        raise DataError(f"{source}: cannot decode ({type(error).__name__}: {_one_line(error)})") from error


def read_pixels(source: Source, dicom_frame: str = "middle") -> np.ndarray:
    """Pixels of one file as a 2-D (grey) or (H, W, 3) RGB array: DICOM as displayed (uint8), the
    others with their stored dtype."""
    path = source.path
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with naming(source):
        if source.field is not None:
            return _read_mat_field(path, source.field)
        if is_dicom(path):
            return read_dicom(path, dicom_frame)
        return _read_raster(path)


def fit_image(pixels: np.ndarray, options: DecodeOptions) -> tuple[np.ndarray, Placement]:
    """Decoded pixels (2-D grey or (H, W, 1 | 3), any dtype) -> (size, size, channels) uint8 as stored in
    the cache, and the placement its masks must follow."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise DataError(f"expected a 2-D grey or RGB image, got an array of shape {pixels.shape}")
    placement = Placement.fit(pixels.shape[0], pixels.shape[1], options.size, options.resize)
    pixels = placement.apply(to_uint8(pixels))
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if options.channels == 1 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)[..., None]
    elif options.channels == 3 and pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels), placement


def load_image(source: Source, options: DecodeOptions) -> tuple[np.ndarray, Placement]:
    """One file as (size, size, channels) uint8, and the placement its masks must follow."""
    with naming(source):
        return fit_image(read_pixels(source, options.dicom_frame), options)


def load_mask(source: Source, placement: Placement) -> np.ndarray:
    """A mask of any resolution covering the same field as its image -> (size, size) uint8 in {0, 1}."""
    with naming(source):
        pixels = read_pixels(source)
        if pixels.ndim == 3:
            pixels = pixels.max(axis=2)
        peak = float(pixels.max())
        # Half the peak separates 0/1, 0/255 and JPEG-blurred masks alike.
        foreground = (pixels > 0.5 * peak).astype(np.float32) if peak > 0 else np.zeros(pixels.shape, np.float32)
        # Area-average then threshold: masks of another size (256 px masks for 299 px images) keep their shape.
        return (placement.apply(foreground, cv2.INTER_AREA) >= 0.5).astype(np.uint8)


def box_mask(source: Source, shape: tuple[int, int], placement: Placement) -> np.ndarray:
    """Boxes in the pixels of an image of `shape` -> (size, size) uint8 in {0, 1}: every output pixel a
    box touches, so a small lesion box still marks at least one pixel after downscaling."""
    rows, cols = shape
    canvas = np.zeros(shape, np.float32)
    for x0, y0, x1, y1 in source.boxes:
        top, bottom = max(0, int(np.floor(y0))), min(rows, int(np.ceil(y1)))
        left, right = max(0, int(np.floor(x0))), min(cols, int(np.ceil(x1)))
        canvas[top:bottom, left:right] = 1.0
    return (placement.apply(canvas, cv2.INTER_AREA) > 0).astype(np.uint8)


def decode_sample(image: Source, masks: Sequence[Source | None],
                  options: DecodeOptions) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """An image and its masks (None: this sample has no mask of that kind) as they go into the cache."""
    with naming(image):
        raw = read_pixels(image, options.dicom_frame)
        pixels, placement = fit_image(raw, options)
    decoded = []
    for mask in masks:
        if mask is None:
            decoded.append(None)
        elif mask.boxes:
            decoded.append(box_mask(mask, raw.shape[:2], placement))
        else:
            decoded.append(load_mask(mask, placement))
    return pixels, decoded
