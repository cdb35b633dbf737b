"""Every decoder survives corrupted files: truncated, bit-flipped and zero-length versions of real files
(pydicom's test files, PNG/JPEG/TIFF/BMP fixtures, a MATLAB v7.3 brain-tumour file) each decode or give
one DataError line naming the file, within a time bound, without hanging or crashing the interpreter.

The files are decoded in a worker process (fuzz_worker.py) so a crash or a hang is seen, not suffered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from data_writers import gradient_image, write_cjdata_mat, write_jpeg, write_png
from pydicom.data import get_testdata_files

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("fuzz_worker.py")
SECONDS_PER_FILE = 10.0  # the watchdog's bound; a typical corrupt file takes milliseconds
TRUNCATIONS = (0.0, 0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)  # 0.0: the zero-length file
BIT_FLIPS = (1, 2, 4, 8, 16, 64)  # bits flipped at seeded random positions, one variant each
MAX_DICOM_BYTES = 120_000  # pydicom's small test files: the big ones add decode time, not coverage
DICOM_STRIDE = 3  # every third of them (~55 files: every transfer syntax family still appears)


def real_files(folder: Path) -> list[tuple[Path, str | None]]:
    """The originals: (path, HDF5 field or None)."""
    folder.mkdir()
    rgb = np.stack([gradient_image(40, seed) for seed in (1, 2, 3)], axis=2)
    grey16 = gradient_image(40, 4, np.uint16)
    files = [
        write_png(folder / "grey.png", gradient_image(40, 0)),
        write_png(folder / "grey16.png", grey16),
        write_png(folder / "rgba.png", np.concatenate([rgb, np.full((40, 40, 1), 200, np.uint8)], axis=2)),
        write_jpeg(folder / "grey.jpg", gradient_image(40, 5)),
        write_jpeg(folder / "rgb.jpg", rgb),
    ]
    for name in ("grey.tif", "grey.bmp", "rgb.tiff"):
        pixels = rgb if name.startswith("rgb") else gradient_image(40, 6)
        assert cv2.imwrite(str(folder / name), pixels)
        files.append(folder / name)
    dicoms = [Path(p) for p in sorted(get_testdata_files()) if os.path.isfile(p)
              and os.path.getsize(p) <= MAX_DICOM_BYTES and not p.endswith((".json", ".txt", ".py"))][::DICOM_STRIDE]
    mat = write_cjdata_mat(folder / "tumour.mat", gradient_image(40, 7, np.uint16) // 2, 1, "P1",
                           gradient_image(40, 8) > 128)
    return [(f, None) for f in files + dicoms] + [(mat, "cjdata/image"), (mat, "cjdata/tumorMask")]


def corrupted(original: Path, folder: Path, number: int) -> list[Path]:
    """Truncated, zero-length and bit-flipped copies of `original` (same suffix: the same decoder is tried)."""
    data = original.read_bytes()
    rng = np.random.default_rng(number)
    out = []
    for fraction in TRUNCATIONS:
        out.append(folder / f"{number}-cut{int(fraction * 100)}{original.suffix}")
        out[-1].write_bytes(data[:int(len(data) * fraction)])
    for flips in BIT_FLIPS:
        buffer = bytearray(data)
        for position in rng.integers(0, len(buffer) * 8, flips):
            buffer[position // 8] ^= 1 << int(position % 8)
        out.append(folder / f"{number}-flip{flips}{original.suffix}")
        out[-1].write_bytes(bytes(buffer))
    return out


def decode_all(files: list[tuple[str, str | None]]) -> tuple[dict[int, tuple[str, float, str]], list[str]]:
    """index -> (outcome, seconds, message), and the failures (hang, crash, non-DataError exception), each
    naming its file; a worker that dies is restarted after the file it died on."""
    results, failures, first = {}, [], 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    while first < len(files):
        worker = subprocess.run([sys.executable, str(WORKER), str(first), str(SECONDS_PER_FILE)],
                                input=json.dumps(files) + "\n", capture_output=True, text=True, env=env,
                                timeout=SECONDS_PER_FILE * 4 + 1.0 * len(files))
        current = None
        for line in worker.stdout.splitlines():
            kind, index, *rest = line.split(" ", 3)
            current = int(index)
            if kind in ("ok", "refused"):
                results[current] = (kind, float(rest[0]), json.loads(rest[1]) if len(rest) > 1 else "")
            elif kind == "bug":
                failures.append(f"{files[current][0]}: {' '.join(rest)}")
        if worker.returncode == 0:
            break
        if current is not None and current not in results and not any(files[current][0] in f for f in failures):
            failures.append(f"{files[current][0]}: worker ended with {worker.returncode} (hang or crash): "
                            f"{worker.stderr[-300:]}")
        first = (current if current is not None else first) + 1
    return results, failures


def test_at_least_500_corrupted_files_each_decode_or_are_refused_by_name(tmp_path) -> None:
    originals = real_files(tmp_path / "real")
    folder = tmp_path / "fuzzed"
    folder.mkdir()
    files = []
    for number, (path, field) in enumerate(originals):
        files += [(str(copy), field) for copy in corrupted(path, folder, number)]
    assert len(files) >= 500

    results, failures = decode_all(files)
    assert failures == []
    assert len(results) == len(files)
    refused = {i: message for i, (kind, _, message) in results.items() if kind == "refused"}
    for index, message in refused.items():
        assert message.startswith(files[index][0]) and "\n" not in message, message
    zero_length = [i for i, (path, _) in enumerate(files) if "-cut0." in path]
    assert zero_length and all(i in refused for i in zero_length)  # an empty file is never an image
    assert max(seconds for _, seconds, _ in results.values()) < SECONDS_PER_FILE
    # Most corruptions are detected; flipped bits in pixel data legitimately still decode.
    assert 0 < len(refused) < len(files)
