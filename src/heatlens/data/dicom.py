"""DICOM files: recognised by content, one frame chosen, shown as a viewer would, made uint8.

Grey (MONOCHROME1 / MONOCHROME2): modality LUT (rescale slope / intercept), then the VOI LUT or
window, min-max to 0..255, MONOCHROME1 inverted so that high values are bright. Palette colour: the
palette applied. RGB and YBR (converted to RGB by pydicom): no LUTs (they are defined for grey data
only, an ultrasound's window attributes are ignored), scaled from the stored bit depth. Compressed
transfer syntaxes (JPEG-LS, JPEG lossless, JPEG 2000) are decoded by GDCM through pydicom, in a helper
process: GDCM aborts the whole interpreter on some corrupt streams (a C++ assertion), and there a corrupt
file must cost one DataError, not the job.
"""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from heatlens.data.errors import DataError
from heatlens.data.pixels import scale_bits, to_uint8

if TYPE_CHECKING:
    import pydicom

DICOM_SUFFIXES = {".dcm", ".dicom"}
FRAME_CHOICES = ("first", "middle", "error")
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# The helper process of this process (pid -> executor: a forked data worker must start its own, the
# inherited executor's threads do not exist in it); started on the first compressed file, again after a crash.
_isolated: dict[int, ProcessPoolExecutor] = {}


def has_dicom_marker(path: Path) -> bool:
    """A DICOM file (PS3.10): a 128-byte preamble, then `DICM`. Media names such as `CR1/6154` or
    Siemens `.IMA` carry no `.dcm` suffix, so the content decides."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom(path: Path) -> bool:
    return path.suffix.lower() in DICOM_SUFFIXES or has_dicom_marker(path)


def _frame_index(path: Path, frames: int, policy: str) -> int | None:
    if frames <= 1:
        return None
    if policy == "error":
        raise DataError(f"{path}: multi-frame DICOM ({frames} frames); set data.dicom_frame=first or "
                        "data.dicom_frame=middle to use one of them")
    return 0 if policy == "first" else frames // 2


def _frame(path: str, index: int | None) -> np.ndarray:
    # pydicom is imported where a DICOM is read: most datasets have none, and it costs ~0.5 s CPU.
    import pydicom
    from pydicom.pixels import pixel_array

    return pixel_array(pydicom.dcmread(path, force=True), index=index)


def _decoded_frame(path: Path, dataset: "pydicom.Dataset", index: int | None) -> np.ndarray:
    """The frame's pixels; compressed ones (except RLE: pydicom's own numpy decoder) from the helper process."""
    from pydicom.pixels import pixel_array
    from pydicom.uid import RLELossless

    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if not (syntax and syntax.is_compressed and syntax != RLELossless):
        return pixel_array(dataset, index=index)
    pid = os.getpid()
    if pid not in _isolated:
        # forkserver: a clean process, without the threads and locks of this one.
        _isolated[pid] = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
    try:
        return _isolated[pid].submit(_frame, str(path), index).result()
    except BrokenProcessPool:
        del _isolated[pid]
        raise DataError(f"{path}: the DICOM decoder crashed on its compressed pixel data "
                        f"({syntax.name}): a corrupt file") from None


def read_dicom(path: Path, frame: str = "middle") -> np.ndarray:
    """One frame of a DICOM file as (H, W) or (H, W, 3) uint8; `frame` is `data.dicom_frame`."""
    import pydicom
    from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

    # force: `.dcm` files written without the preamble are still DICOM datasets.
    dataset = pydicom.dcmread(path, force=True)
    if not any(tag in dataset for tag in _PIXEL_TAGS):
        kind = str(dataset.get("Modality") or getattr(dataset.get("SOPClassUID"), "name", None) or "no SOP class")
        kind = " ".join("".join(c if c.isprintable() else " " for c in kind).split())[:64]  # a corrupt tag's bytes
        raise DataError(f"{path}: DICOM file without pixel data ({kind}), not an image")
    index = _frame_index(path, int(dataset.get("NumberOfFrames") or 1), frame)
    pixels = _decoded_frame(path, dataset, index)  # only that frame is decoded
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, dataset)
        return scale_bits(rgb, 8 * rgb.dtype.itemsize)
    if pixels.ndim == 2:
        grey = to_uint8(apply_voi_lut(apply_modality_lut(pixels, dataset), dataset))
        return 255 - grey if photometric == "MONOCHROME1" else grey
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return scale_bits(pixels, int(dataset.get("BitsStored") or 8 * pixels.dtype.itemsize))
    raise DataError(f"{path}: unsupported DICOM pixel layout {pixels.shape} "
                    f"(PhotometricInterpretation {photometric or 'missing'})")
