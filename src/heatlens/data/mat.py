"""figshare brain-tumour MRI set: MATLAB v7.3 (HDF5) files holding a `cjdata` struct, read with h5py."""

import logging
from pathlib import Path

import h5py
import numpy as np

from heatlens.data.decode import Source
from heatlens.data.errors import DataError
from heatlens.data.samples import Listing, Sample, relative_id, require_folder

log = logging.getLogger(__name__)

BRAIN_TUMOR_CLASSES = ["meningioma", "glioma", "pituitary"]  # cjdata.label 1, 2, 3


def _matlab_string(dataset: h5py.Dataset) -> str:
    """MATLAB char arrays are stored as uint16 code units; numbers are kept as their text."""
    values = np.asarray(dataset).ravel()
    if dataset.attrs.get("MATLAB_class", b"") in (b"char", "char"):
        return "".join(chr(int(v)) for v in values)
    return "".join(str(int(v)) for v in values)


def read_cjdata_header(path: Path) -> tuple[str, str]:
    """(class name, patient id) of one file, without reading the image."""
    try:
        with h5py.File(path, "r") as mat:
            if "cjdata" not in mat:
                raise DataError(f"{path}: no 'cjdata' struct (figshare brain-tumour file expected)")
            label = int(np.asarray(mat["cjdata/label"]).ravel()[0])
            patient = _matlab_string(mat["cjdata/PID"])
    except OSError as error:
        raise DataError(f"{path}: not a MATLAB v7.3 (HDF5) file ({error})") from error
    except KeyError as error:
        raise DataError(f"{path}: cjdata lacks a field ({error})") from error
    if not 1 <= label <= len(BRAIN_TUMOR_CLASSES):
        raise DataError(f"{path}: cjdata.label={label}, expected 1 (meningioma), 2 (glioma) or 3 (pituitary)")
    return BRAIN_TUMOR_CLASSES[label - 1], patient


def list_brain_tumor(root: Path, on_bad_image: str = "error") -> Listing:
    """Every `*.mat` under data.root; the patient id (PID) is the split group, tumorMask the mask."""
    require_folder(root, "data.root")
    files = sorted(root.rglob("*.mat"))
    if not files:
        raise DataError(f"data.root={root}: no .mat files (expected the figshare brain-tumour files 1.mat ...)")
    samples, skipped = [], []
    for path in files:
        try:
            label, patient = read_cjdata_header(path)
        except DataError as error:
            if on_bad_image != "skip":
                raise
            skipped.append({"file": str(path), "error": str(error)})
            continue
        samples.append(Sample(relative_id(path, root), Source(path, "cjdata/image"), label,
                              masks={"tumor": Source(path, "cjdata/tumorMask")}, group=patient))
    if skipped:
        log.warning("Skipped %d bad .mat file(s) (data.on_bad_image=skip): %s", len(skipped),
                    "; ".join(f"{s['file']} ({s['error']})" for s in skipped))
    return Listing(samples, BRAIN_TUMOR_CLASSES, ["tumor"], skipped)
