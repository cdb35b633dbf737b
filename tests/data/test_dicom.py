"""DICOM as hospitals export it: pydicom's own test files against pydicom's pixels, and generated fixtures
for multi-frame, wide, colour with a window, palette colour, suffix-less, signed, MONOCHROME1 and corrupt files."""

import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from data_writers import gradient_image, write_dicom
from pydicom.data import get_testdata_files
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut

from heatlens.data import DataError
from heatlens.data.decode import DecodeOptions, Source, load_image, read_pixels

PYDICOM_FILES = sorted(f for f in get_testdata_files() if os.path.isfile(f))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """The decoder's contract for grey data: 8-bit data as it is, anything else min-max to 0..255."""
    if values.dtype == np.uint8:
        return values
    values = values.astype(np.float64)
    span = values.max() - values.min()
    if span == 0:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values - values.min()) * (255.0 / span)).astype(np.uint8)


def pydicom_display(path: str) -> np.ndarray:
    """The middle frame as pydicom shows it: the full pixel array decoded by pydicom, its modality LUT, VOI
    LUT or window and MONOCHROME1 inversion for grey data, its palette for palette colour."""
    ds = pydicom.dcmread(path, force=True)
    pixels = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    photometric = ds.get("PhotometricInterpretation", "")
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(pixels, ds).astype(np.float64)
        return np.rint(rgb * 255 / (2 ** (8 * apply_color_lut(pixels, ds).dtype.itemsize) - 1)).astype(np.uint8)
    if pixels.ndim == 2:
        grey = _to_uint8(apply_voi_lut(apply_modality_lut(pixels, ds), ds))
        return 255 - grey if photometric == "MONOCHROME1" else grey
    bits = int(ds.get("BitsStored") or 8 * pixels.dtype.itemsize)
    return np.rint(pixels.astype(np.float64) * 255 / (2**bits - 1)).astype(np.uint8)


@pytest.mark.parametrize("path", PYDICOM_FILES, ids=lambda p: os.path.relpath(p, os.path.dirname(PYDICOM_FILES[0])))
def test_every_pydicom_test_file_decodes_like_pydicom_or_fails_naming_it(path: str):
    try:
        expected = pydicom_display(path)
    except Exception:  # not a DICOM image pydicom can decode: no pixel data, truncated, not DICOM at all
        expected = None
    if expected is None:
        with pytest.raises(DataError) as error:
            read_pixels(Source(Path(path)))
        assert str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)
        return
    got = read_pixels(Source(Path(path)))
    assert got.dtype == np.uint8 and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_the_test_files_cover_the_hard_cases():
    """The parametrised test above only means something if pydicom's files hold these cases."""
    kinds = {}
    for path in PYDICOM_FILES:
        try:
            ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            kinds.setdefault(str(ds.file_meta.TransferSyntaxUID.name), []).append(path)
            kinds.setdefault(str(ds.get("PhotometricInterpretation")), []).append(path)
            if int(ds.get("NumberOfFrames") or 1) > 1:
                kinds.setdefault("multi-frame", []).append(path)
        except Exception:
            continue
    for kind in ("JPEG-LS Lossless Image Compression", "JPEG 2000 Image Compression (Lossless Only)",
                 "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
                 "MONOCHROME1", "PALETTE COLOR", "YBR_FULL_422", "multi-frame"):
        assert kind in kinds, kind
    # The compressed ones decode (GDCM is a dependency): no DataError for them.
    for kind in ("JPEG-LS Lossless Image Compression", "JPEG 2000 Image Compression (Lossless Only)"):
        for path in kinds[kind]:
            if "PixelData" in pydicom.dcmread(path, force=True):
                assert read_pixels(Source(Path(path))).size > 0


def _frames(count: int, rows: int, cols: int) -> np.ndarray:
    """Frame k is constant 1000 * (k + 1) on a small gradient, so the frame picked shows in the pixels."""
    return np.stack([gradient_image(max(rows, cols), seed=k, dtype=np.uint16)[:rows, :cols] // 8 + 1000 * (k + 1)
                     for k in range(count)]).astype(np.uint16)


@pytest.mark.parametrize(("policy", "frame"), [("first", 0), ("middle", 5)])
def test_multi_frame_grey_takes_one_frame(tmp_path: Path, policy: str, frame: int):
    stack = _frames(10, 24, 24)
    path = write_dicom(tmp_path / "mr.dcm", stack)
    got = read_pixels(Source(path), policy)
    assert got.shape == (24, 24) and np.array_equal(got, _to_uint8(stack[frame]))


def test_multi_frame_under_error_names_the_file(tmp_path: Path):
    path = write_dicom(tmp_path / "dose.dcm", _frames(3, 8, 8))
    with pytest.raises(DataError, match=rf"{path}: multi-frame DICOM \(3 frames\); set data.dicom_frame="):
        read_pixels(Source(path), "error")


def test_wide_multi_frame_resizes_without_opencv_errors(tmp_path: Path):
    stack = _frames(3, 40, 600)  # 600 columns: once crashed cv2.resize as a 600-channel image
    path = write_dicom(tmp_path / "wide.dcm", stack)
    image, _ = load_image(Source(path), DecodeOptions(60, 1, "pad"))
    assert image.shape == (60, 60, 1)
    middle = _to_uint8(stack[1])
    # letterbox: 600 -> 60 columns, 40 -> 4 rows, centred at rows 28..31; black elsewhere
    assert (image[:28] == 0).all() and (image[32:] == 0).all()
    expected = middle.reshape(4, 10, 60, 10).mean(axis=(1, 3))
    assert np.abs(image[28:32, :, 0].astype(float) - expected).max() <= 1


def test_colour_with_window_attributes_passes_through(tmp_path: Path):
    rgb = np.stack([gradient_image(20, seed=1), gradient_image(20, seed=2) // 2, 255 - gradient_image(20, seed=3)],
                   axis=2)
    path = write_dicom(tmp_path / "us.dcm", rgb, "RGB", window=(40, 20))
    assert np.array_equal(read_pixels(Source(path)), rgb)
    as_grey = load_image(Source(path), DecodeOptions(20, 1))[0][..., 0]
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    assert np.abs(as_grey - luma).max() <= 1


def test_palette_colour_is_applied(tmp_path: Path):
    indices = np.array([[0, 1, 2, 3]] * 4, dtype=np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 0], [10, 20, 30]], dtype=np.uint16) * 257  # 16-bit LUT
    path = write_dicom(tmp_path / "pal.dcm", indices, "PALETTE COLOR", palette=palette)
    expected = (palette // 257).astype(np.uint8)[indices]  # 257 * v / 65535 * 255 = v
    assert np.array_equal(read_pixels(Source(path)), expected)


@pytest.mark.parametrize("name", ["CR1/6154", "scan.IMA", "1.2.840.113619.2.5.78"])
def test_dicom_without_a_dcm_suffix_is_recognised_by_content(tmp_path: Path, name: str):
    stored = gradient_image(16, seed=4, dtype=np.uint16)
    path = write_dicom(tmp_path / name, stored)
    assert np.array_equal(read_pixels(Source(path)), _to_uint8(stored))


def _windowed(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 linear VOI window, to an arbitrary [0, 1] output range."""
    low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    y = ((x - (centre - 0.5)) / (width - 1) + 0.5)
    return np.where(x <= low, 0.0, np.where(x > high, 1.0, y))


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_window_and_monochrome1_inversion(tmp_path: Path, photometric: str):
    stored = (np.arange(16).reshape(4, 4) * 100).astype(np.uint16)
    path = write_dicom(tmp_path / "x.dcm", stored, photometric, window=(600, 400))
    shown = _windowed(stored.astype(float), 600, 400)
    if photometric == "MONOCHROME1":
        shown = shown.max() - shown
    expected = np.rint((shown - shown.min()) / (shown.max() - shown.min()) * 255).astype(np.uint8)
    assert np.array_equal(read_pixels(Source(path)), expected)


def test_signed_16_bit_with_rescale_and_window(tmp_path: Path):
    stored = (np.arange(-8, 8).reshape(4, 4) * 300).astype(np.int16)  # CT-like signed values
    path = write_dicom(tmp_path / "ct.dcm", stored, rescale=(2.0, -1024.0), window=(-1000, 4000))
    hounsfield = stored.astype(float) * 2.0 - 1024.0
    shown = _windowed(hounsfield, -1000, 4000)
    expected = np.rint((shown - shown.min()) / (shown.max() - shown.min()) * 255).astype(np.uint8)
    assert np.abs(read_pixels(Source(path)).astype(int) - expected).max() <= 1
    no_window = write_dicom(tmp_path / "raw.dcm", stored)  # signed data without LUTs: min-max of the values
    assert np.array_equal(read_pixels(Source(no_window)), _to_uint8(stored))


def test_monochrome1_is_inverted(tmp_path: Path):
    stored = (np.arange(256).reshape(16, 16) * 100).astype(np.uint16)
    mono1 = read_pixels(Source(write_dicom(tmp_path / "m1.dcm", stored, "MONOCHROME1")))
    mono2 = read_pixels(Source(write_dicom(tmp_path / "m2.dcm", stored, "MONOCHROME2")))
    assert np.array_equal(mono1.astype(int), 255 - mono2.astype(int))
    assert mono1[0, 0] == 255 and mono1[-1, -1] == 0  # the smallest stored value is the brightest


def test_corrupt_dicom_files_fail_with_one_line_naming_them(tmp_path: Path):
    stored = gradient_image(32, seed=6, dtype=np.uint16)
    truncated = write_dicom(tmp_path / "truncated.dcm", stored)
    truncated.write_bytes(truncated.read_bytes()[:-600])
    garbage = tmp_path / "CR2" / "6155"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(300))
    no_pixels = write_dicom(tmp_path / "sr.dcm", stored)
    ds = pydicom.dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(no_pixels)
    for path, reason in ((truncated, "cannot decode"), (garbage, "cannot decode|DICOM file without pixel data"),
                         (no_pixels, "DICOM file without pixel data")):
        with pytest.raises(DataError, match=rf"^{path}: ({reason})") as error:
            load_image(Source(path), DecodeOptions(16, 1))
        assert "\n" not in str(error.value)
