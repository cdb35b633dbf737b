"""Pixel arrays to uint8, and into the square the network sees (`data.resize`: stretch | pad | crop)."""

from dataclasses import dataclass

import cv2
import numpy as np

RESIZE_MODES = ("stretch", "pad", "crop")


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 as it is; any other range (16-bit PNG, MRI int16, DICOM after its LUTs) min-max to 0..255."""
    if pixels.dtype == np.uint8:
        return pixels
    pixels = pixels.astype(np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return np.rint((pixels - low) * (255.0 / (high - low))).astype(np.uint8)


def scale_bits(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Colour data stored with `bits` bits per sample to 0..255 (the stored range, not the image's own)."""
    if pixels.dtype == np.uint8 and bits == 8:
        return pixels
    top = float(2**bits - 1)
    return np.rint(np.clip(pixels.astype(np.float64), 0.0, top) * (255.0 / top)).astype(np.uint8)


@dataclass(frozen=True)
class Placement:
    """Where a picture goes in the size × size output: the part kept (fractions of the picture's height
    and width, so a mask stored at another resolution keeps the same part) is resized into `box`;
    the rest of the output is background 0 (black; MONOCHROME1 is inverted before this)."""

    keep: tuple[float, float, float, float]  # top, bottom, left, right as fractions of the picture
    box: tuple[int, int, int, int]  # top, left, height, width in the output
    size: int

    @classmethod
    def fit(cls, height: int, width: int, size: int, mode: str) -> "Placement":
        if mode == "stretch":
            return cls((0.0, 1.0, 0.0, 1.0), (0, 0, size, size), size)
        if mode == "pad":  # letterbox: the longer side fills the square, aspect ratio kept
            scale = size / max(height, width)
            rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
            return cls((0.0, 1.0, 0.0, 1.0), ((size - rows) // 2, (size - cols) // 2, rows, cols), size)
        if mode == "crop":  # the centred square of side min(height, width), then resized
            side = min(height, width)
            top, left = (height - side) // 2, (width - side) // 2
            keep = (top / height, (top + side) / height, left / width, (left + side) / width)
            return cls(keep, (0, 0, size, size), size)
        raise ValueError(f"resize mode {mode!r} is not one of {RESIZE_MODES}")

    def apply(self, pixels: np.ndarray, interpolation: int | None = None) -> np.ndarray:
        """(H, W) or (H, W, C) at any resolution -> (size, size[, C]) of the same dtype."""
        rows, cols = pixels.shape[:2]
        top, bottom, left, right = self.keep
        kept = pixels[round(top * rows):round(bottom * rows), round(left * cols):round(right * cols)]
        box_top, box_left, box_rows, box_cols = self.box
        if kept.shape[:2] != (box_rows, box_cols):
            if interpolation is None:  # area averaging when shrinking avoids aliasing
                shrink = kept.shape[0] > box_rows or kept.shape[1] > box_cols
                interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            kept = cv2.resize(np.ascontiguousarray(kept), (box_cols, box_rows), interpolation=interpolation)
            kept = kept.reshape(box_rows, box_cols, *pixels.shape[2:])
        if (box_rows, box_cols) == (self.size, self.size):
            return np.ascontiguousarray(kept)
        out = np.zeros((self.size, self.size, *pixels.shape[2:]), dtype=pixels.dtype)
        out[box_top:box_top + box_rows, box_left:box_left + box_cols] = kept
        return out
