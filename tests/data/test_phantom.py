"""Phantom: deterministic, COVID-19 Radiography layout, lesions in the lungs, global statistics uninformative."""

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from heatlens.data import phantom as phantom_module
from heatlens.data.errors import DataError
from heatlens.data.phantom import CLASS_NAMES, PhantomSpec, generate
from heatlens.data.phantom_render import render_batch

SMALL = PhantomSpec(num_images=60, source_size=48, seed=1, shortcut_fraction=0.5, shortcut_class="Lung_Opacity")


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("phantom") / "small"
    generate(SMALL, root)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_from_the_seed(phantom_root: Path, tmp_path: Path):
    generate(SMALL, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(phantom_root)
    other = PhantomSpec(num_images=60, source_size=48, seed=2)
    generate(other, tmp_path / "other")
    first = "COVID/images/COVID-1.png"
    assert (tmp_path / "other" / first).read_bytes() != (phantom_root / first).read_bytes()
    assert other.key() != SMALL.key()


def test_layout_manifest_and_class_balance(phantom_root: Path):
    with open(phantom_root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "class", "lesion_area", "has_shortcut"]
    counts = {name: sum(r["class"] == name for r in rows) for name in CLASS_NAMES}
    assert counts == dict(zip(CLASS_NAMES, SMALL.class_counts())) and sum(counts.values()) == 60
    assert counts["Normal"] > counts["Lung_Opacity"] > counts["COVID"] > counts["Viral Pneumonia"]
    for name, count in counts.items():
        images = sorted(p.name for p in (phantom_root / name / "images").iterdir())
        assert images == sorted(f"{name}-{i}.png" for i in range(1, count + 1))
        for sub in ("masks", "lesions"):
            assert sorted(p.name for p in (phantom_root / name / sub).iterdir()) == images
    for row in rows:
        image_path = phantom_root / row["path"]
        image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
        lung = cv2.imread(str(image_path.parents[1] / "masks" / image_path.name), cv2.IMREAD_UNCHANGED) > 0
        lesion = cv2.imread(str(image_path.parents[1] / "lesions" / image_path.name), cv2.IMREAD_UNCHANGED) > 0
        assert image.shape == (48, 48) and image.dtype == np.uint8
        assert 0.05 < lung.mean() < 0.5
        assert not (lesion & ~lung).any()  # evidence lives only inside the lungs
        assert np.isclose(float(row["lesion_area"]), lesion.mean(), atol=1e-4)
        assert (lesion.sum() == 0) == (row["class"] == "Normal")


def test_shortcut_marker_only_on_the_chosen_class(phantom_root: Path):
    with open(phantom_root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    marked = [r for r in rows if r["has_shortcut"] == "1"]
    opacity = [r for r in rows if r["class"] == "Lung_Opacity"]
    assert {r["class"] for r in marked} == {"Lung_Opacity"} and len(marked) == round(0.5 * len(opacity))
    for row in rows:
        corner = cv2.imread(str(phantom_root / row["path"]), cv2.IMREAD_UNCHANGED)[1:4, 1:4]
        assert (corner.min() == 255) == (row["has_shortcut"] == "1")


def _lung_features(image: np.ndarray, lung: np.ndarray) -> list[float]:
    """What a radiologist would look at: the lung fields' intensity tail and texture, per image."""
    z = (image - np.median(image[lung])) / image.std()
    texture = np.abs(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F))[lung].mean() / image.std()
    return [*np.percentile(z[lung], [50, 75, 90, 95, 99, 100]), texture]


def test_global_statistics_near_chance_while_lesions_are_learnable():
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(4), 150))
    batch = render_batch(rng, labels, 64, np.zeros(len(labels), bool))
    images = np.rint(batch.images * 255) / 255  # as written to 8-bit PNG
    global_stats = np.stack([images.mean(axis=(1, 2)), images.std(axis=(1, 2))], axis=1)
    lungs = np.array([_lung_features(im, lung) for im, lung in zip(images, batch.lungs)])
    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))

    def score(features: np.ndarray) -> float:
        return balanced_accuracy_score(labels, cross_val_predict(model, features, labels, cv=5))

    assert score(global_stats) < 0.35  # chance is 0.25 for four balanced classes
    assert score(lungs) > 0.7


def test_spec_errors_name_the_key():
    with pytest.raises(DataError, match=r"data\.shortcut\.class_name='Cat'"):
        PhantomSpec(shortcut_class="Cat")
    with pytest.raises(DataError, match=r"data\.num_images=2"):
        PhantomSpec(num_images=2)


def test_same_files_with_one_or_two_worker_processes(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(phantom_module, "_CHUNK_PIXELS", 48 * 48 * 8)  # chunks of 8: 60 images, 8 chunks
    generate(SMALL, tmp_path / "one", workers=1)
    generate(SMALL, tmp_path / "two", workers=2)
    assert _files(tmp_path / "one") == _files(tmp_path / "two")


def test_masks_at_their_own_size_like_the_database(tmp_path: Path):
    """The COVID-19 Radiography Database: 299 px images, 256 px masks; here 60 px images, 48 px masks."""
    spec = PhantomSpec(num_images=12, source_size=60, mask_size=48, seed=3)
    generate(spec, tmp_path / "p")
    with open(tmp_path / "p" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        image_path = tmp_path / "p" / row["path"]
        lung = cv2.imread(str(image_path.parents[1] / "masks" / image_path.name), cv2.IMREAD_UNCHANGED) > 0
        lesion = cv2.imread(str(image_path.parents[1] / "lesions" / image_path.name), cv2.IMREAD_UNCHANGED) > 0
        assert cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED).shape == (60, 60)
        assert lung.shape == lesion.shape == (48, 48) and 0.05 < lung.mean() < 0.5
        assert not (lesion & ~lung).any() and np.isclose(float(row["lesion_area"]), lesion.mean(), atol=1e-4)
        assert (lesion.sum() == 0) == (row["class"] == "Normal")
    assert spec.key() != PhantomSpec(num_images=12, source_size=60, seed=3).key()
    with pytest.raises(DataError, match=r"data\.mask_size=4"):
        PhantomSpec(mask_size=4)
