"""Synthetic MLflow runs holding the catalogued metric names (heatlens.catalog) and explain/*.npz arrays, for compare tests."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient
from sklearn.metrics import accuracy_score, f1_score, recall_score

CLASSES = ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"]


@dataclass
class FakeRun:
    """Arrays of one synthetic run: the truth the report must reproduce."""

    ids: np.ndarray
    labels: np.ndarray
    preds: np.ndarray
    maps: np.ndarray  # (N, C, h, w) raw
    curves: dict[str, np.ndarray]  # order -> (N, L+1)


def make_fake_run(seed: int, n: int = 40, grid: int = 4, steps: int = 6, error_rate: float = 0.2) -> FakeRun:
    rng = np.random.default_rng(seed)
    ids = np.array([f"{CLASSES[i % 4]}/images/img_{i:03d}.png" for i in range(n)])
    labels = np.arange(n) % len(CLASSES)
    wrong = rng.random(n) < error_rate
    preds = np.where(wrong, (labels + rng.integers(1, len(CLASSES), n)) % len(CLASSES), labels)
    maps = rng.normal(size=(n, len(CLASSES), grid, grid)).astype(np.float32)
    start = rng.uniform(0.6, 1.0, size=(n, 1))
    decay = np.cumsum(rng.uniform(0.0, 0.15, size=(n, steps)), axis=1)
    morf = np.concatenate([start, np.clip(start - decay, 0, 1)], axis=1)
    lerf = np.concatenate([start, np.clip(start - decay / 4, 0, 1)], axis=1)
    random = np.concatenate([start, np.clip(start - decay / 2, 0, 1)], axis=1)
    return FakeRun(ids, labels, preds, maps, {"morf": morf, "lerf": lerf, "random": random})


def ids_hash(ids: np.ndarray) -> str:
    return hashlib.sha256("\n".join(sorted(ids.tolist())).encode()).hexdigest()


def reference_metrics(run: FakeRun) -> dict[str, float]:
    """Metrics computed independently with sklearn / the AOPC formula, as training would log them."""
    metrics = {
        "test/acc": accuracy_score(run.labels, run.preds),
        "test/recall_macro": recall_score(run.labels, run.preds, average="macro"),
        "test/f1_macro": f1_score(run.labels, run.preds, average="macro"),
        "model/params_total": 1234.0,
        "model/size_mb": 0.5,
        "model/depth": 7.0,
        "xai/loc/lesion/pointing_game": 0.75,
        "xai/knn_acc_embedding": 0.8,
    }
    recalls = recall_score(run.labels, run.preds, average=None)
    metrics.update({f"test/recall/{c}": float(r) for c, r in zip(CLASSES, recalls)})
    for order, curve in run.curves.items():
        steps = curve.shape[1]
        metrics[f"xai/aopc_{order}"] = float(np.mean([(c[0] - c).sum() / steps for c in curve]))
    return metrics


def log_fake_run(
    client: MlflowClient,
    experiment_id: str,
    name: str,
    run: FakeRun,
    backbone: str = "simple_cnn",
    test_hash: str | None = None,
    status: str = "FINISHED",
    tags: dict[str, str] | None = None,
    thumbnails: bool = False,
) -> str:
    """Create an MLflow run (finished by default) holding `run`'s metrics, tags, test-set hash and npz arrays."""
    tags = {"backbone": backbone, "dataset": "phantom", **(tags or {})}
    mlflow_run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = mlflow_run.info.run_id
    for key, value in reference_metrics(run).items():
        client.log_metric(run_id, key, value)
    client.log_param(run_id, "backbone.name", backbone)
    client.set_tag(run_id, "test_hash", test_hash or ids_hash(run.ids))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "explain"
        folder.mkdir()
        # Key names as the explanation callbacks write them (heatlens.callbacks.gradcam / aopc).
        extra = {"thumbnails": thumbnails_of(run)} if thumbnails else {}
        np.savez_compressed(
            folder / "gradcam.npz",
            ids=run.ids,
            labels=run.labels,
            predictions=run.preds,
            heatmaps=run.maps.astype(np.float16),
            class_names=np.array(CLASSES),
            **extra,
        )
        np.savez_compressed(
            folder / "aopc.npz",
            ids=run.ids,
            labels=run.labels,
            predictions=run.preds,
            **{f"curves_{o}": c for o, c in run.curves.items()},
        )
        client.log_artifacts(run_id, str(folder), "explain")
    if status != "RUNNING":
        client.set_terminated(run_id, status)
    return run_id


def thumbnails_of(run: FakeRun, side: int = 16) -> np.ndarray:
    """(N, side, side) uint8 images whose brightness encodes the row: a thumbnail is traceable to its id."""
    return np.broadcast_to((np.arange(len(run.ids)) * 5 % 256).astype(np.uint8)[:, None, None],
                           (len(run.ids), side, side)).copy()
