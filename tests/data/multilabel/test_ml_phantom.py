"""Multi-label phantom and datamodule plumbing: independent findings, per-finding masks, label matrix, pos_weight."""

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from heatlens.data import build_datamodule
from heatlens.data.errors import DataError
from heatlens.data.phantom_multilabel import FINDINGS, MultilabelPhantomSpec, generate_multilabel

SPEC = MultilabelPhantomSpec(num_images=240, source_size=32, seed=3, prevalence=(0.3, 0.4, 0.25))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ml_phantom") / "set"
    generate_multilabel(SPEC, folder, workers=1)
    return folder


def _manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_files(root: Path, tmp_path: Path):
    generate_multilabel(SPEC, tmp_path / "again", workers=2)  # chunk seeds: any worker count, same files
    assert _files(tmp_path / "again") == _files(root)
    other = MultilabelPhantomSpec(num_images=240, source_size=32, seed=4, prevalence=(0.3, 0.4, 0.25))
    generate_multilabel(other, tmp_path / "other", workers=1)
    first = "images/phantom-00000.png"
    assert (tmp_path / "other" / first).read_bytes() != (root / first).read_bytes()
    assert other.key() != SPEC.key()


def test_findings_independent_at_their_prevalence(root: Path):
    labels = np.array([[int(r[f]) for f in FINDINGS] for r in _manifest(root)], dtype=float)
    n = len(labels)
    assert n == 240
    for k, p in enumerate(SPEC.prevalence):  # binomial: within 4 standard deviations
        assert abs(labels[:, k].mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    # Independence: P(a and b) = P(a) P(b) up to sampling noise (4 sd of the product's estimate).
    for a in range(3):
        for b in range(a + 1, 3):
            joint, product = np.mean(labels[:, a] * labels[:, b]), labels[:, a].mean() * labels[:, b].mean()
            assert abs(joint - product) < 4 * np.sqrt(product * (1 - product) / n)
    counts = labels.sum(axis=1)
    assert (counts == 0).any() and (counts >= 2).any()  # normal images and several findings at once


def test_lesion_masks_line_up_with_labels(root: Path):
    for row in _manifest(root):
        name = Path(row["path"]).name
        lung = cv2.imread(str(root / "masks" / name), cv2.IMREAD_UNCHANGED) > 0
        for finding in FINDINGS:
            lesion_path = root / "lesions" / finding / name
            assert lesion_path.is_file() == (row[finding] == "1")
            if lesion_path.is_file():
                lesion = cv2.imread(str(lesion_path), cv2.IMREAD_UNCHANGED) > 0
                assert lesion.any() and not (lesion & ~lung).any()


def _config(root: Path, **extra) -> dict:
    return {"name": "phantom", "format": "phantom", "task": "multilabel", "root": str(root), "image_size": 32,
            "num_images": SPEC.num_images, "source_size": SPEC.source_size, "generator_seed": SPEC.seed,
            "finding_prevalence": dict(zip(FINDINGS, SPEC.prevalence)), "build_workers": 1,
            "healthy_class": "Normal", "augment": {}, **extra}


def test_datamodule_items_label_matrix_and_pos_weight(root: Path):
    dm = build_datamodule(_config(root, pos_weight="balanced"))
    dm.setup()
    assert dm.task == "multilabel" and dm.class_names == list(FINDINGS) and dm.healthy_class is None
    assert dm.mask_kinds == ["lung", "lesion"]
    manifest = {r["path"]: [float(r[f]) for f in FINDINGS] for r in _manifest(root)}
    for split in ("train", "val", "test"):
        expected = np.array([manifest[i] for i in dm.split_ids[split]], dtype=np.float32)
        np.testing.assert_array_equal(dm.label_matrix(split), expected)
    dataset = dm.test_dataset
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["label"].dtype.is_floating_point and item["label"].shape == (3,)
        assert item["masks"]["lung"].shape == (1, 32, 32) and item["masks"]["lesion"].shape == (3, 32, 32)
        has_lesion = item["masks"]["lesion"].flatten(1).amax(dim=1).numpy() > 0
        np.testing.assert_array_equal(has_lesion, item["label"].numpy() == 1.0)
    train = [manifest[i] for i in dm.split_ids["train"]]
    for k in range(3):
        positives = sum(row[k] == 1.0 for row in train)
        negatives = len(train) - positives
        assert dm.pos_weight()[k].item() == pytest.approx(negatives / positives)
    assert build_datamodule(_config(root)).pos_weight() is None  # data.pos_weight: none (default)


def test_splits_disjoint_and_stratified_per_finding(root: Path):
    dm = build_datamodule(_config(root))
    dm.setup()
    ids = [set(dm.split_ids[s]) for s in ("train", "val", "test")]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]) and sum(map(len, ids)) == 240
    total = sum(dm.label_matrix(s).sum(axis=0) for s in ("train", "val", "test"))
    for split, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        positives = dm.label_matrix(split).sum(axis=0)
        assert np.all(np.abs(positives - share * total) <= 1.0)  # each finding's positives split by the ratios


@pytest.mark.parametrize(("extra", "message"), [
    ({"finding_prevalence": {"COVID": 1.5}}, "data.finding_prevalence"),
    ({"finding_prevalence": {"Normal": 0.2}}, "data.finding_prevalence"),
    ({"balance": "downsample"}, "data.balance=downsample"),
    ({"task": "both"}, "data.task='both'"),
    ({"pos_weight": "auto"}, "data.pos_weight='auto'"),
    ({"shortcut": {"fraction": 0.5, "class_name": "Normal"}}, "data.shortcut.class_name='Normal'"),
])
def test_bad_keys_one_line(tmp_path: Path, extra: dict, message: str):
    with pytest.raises(DataError, match=message.replace("[", r"\[")) as error:
        build_datamodule(_config(tmp_path / "unused", **extra))
    assert "\n" not in str(error.value)


def test_single_label_formats_refuse_multilabel(tmp_path: Path):
    with pytest.raises(DataError, match="data.task=multilabel: data=image_folder holds one class per image"):
        build_datamodule({"name": "image_folder", "root": str(tmp_path), "task": "multilabel"})
    with pytest.raises(DataError, match="data.task=multiclass: data=chexpert is multi-label"):
        build_datamodule({"name": "chexpert", "root": str(tmp_path), "task": "multiclass"})
