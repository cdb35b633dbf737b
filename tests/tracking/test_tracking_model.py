"""The selected model as an MLflow Model: registered, loaded in a fresh process, served over HTTP.

Reference: the training's own data pipeline (image_folder decoding + eval transform) and the
checkpoint's own forward on the tensors it produces, for the same PNG files the model is given raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import lightning as L
import mlflow
import numpy as np
import pytest
import torch
from mlflow.models import get_model_info
from mlflow.tracking import MlflowClient
from mlflow.utils import environment, requirements_utils

from heatlens.data import build_datamodule
from heatlens.explain import cam
from heatlens.models import HeatlensModule
from heatlens.tracking import ModelInputError, RunHandle, log_selected_model
from heatlens.tracking.setup import ensure_experiment
from tracking_server import free_port, running

pytestmark = pytest.mark.slow

CLASSES = ["A", "B", "C"]
# (height, width, channels) per class: wide grey, tall RGB, square grey.
SHAPES = {"A": (40, 56, 1), "B": (56, 40, 3), "C": (48, 48, 1)}
IMAGE_SIZE = 32
CFG = {
    "backbone": {"name": "simple_cnn", "width": 4}, "head": {"name": "timm"},
    "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.01}, "scheduler": {"_target_": None},
}


def _write_images(root: Path) -> dict[str, np.ndarray]:
    """Noise with a class-specific bright square; returns id -> pixels (RGB order) as written."""
    rng = np.random.default_rng(0)
    images = {}
    for k, name in enumerate(CLASSES):
        height, width, channels = SHAPES[name]
        for i in range(6):
            pixels = rng.integers(0, 120, (height, width, channels), dtype=np.uint8)
            pixels[4 + 8 * k:14 + 8 * k, 6:16] = 250
            pixels = pixels[..., 0] if channels == 1 else pixels
            path = root / name / f"{name}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
            images[f"{name}/{name}{i}.png"] = pixels
    return images


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A simple_cnn trained one epoch on 18 PNGs, logged with log_selected_model and registered."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("images")
    raw = _write_images(root)
    data = {"name": "image_folder", "format": "image_folder", "root": str(root), "image_size": IMAGE_SIZE,
            "channels": 1, "batch_size": 8, "num_workers": 0, "split": [0.5, 0.25, 0.25], "augment": {}}
    datamodule = build_datamodule(data, mean=(0.4,), std=(0.3,))
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.class_names == CLASSES
    L.seed_everything(0, verbose=False)
    module = HeatlensModule({**CFG, "data": data}, CLASSES, in_chans=1)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(root))
    trainer.fit(module, datamodule=datamodule)
    checkpoint = root / "selected.ckpt"
    trainer.save_checkpoint(checkpoint)

    uri = os.environ["MLFLOW_TRACKING_URI"]
    experiment_id = ensure_experiment(uri, "tracking-model")
    run = RunHandle(uri, MlflowClient(uri).create_run(experiment_id).info.run_id)
    name = f"heatlens-test-{run.run_id[:8]}"
    scans = []
    with pytest.MonkeyPatch.context() as patch:
        # As in a fresh process: MLflow's map of installed distributions not built yet; each build counted.
        patch.setattr(requirements_utils, "_MODULES_TO_PACKAGES", None)
        patch.setattr(requirements_utils, "_PACKAGES_TO_MODULES", None)
        scan = requirements_utils.importlib_metadata.packages_distributions
        patch.setattr(requirements_utils.importlib_metadata, "packages_distributions",
                      lambda: scans.append(1) or scan())
        info = log_selected_model(run, checkpoint, image_size=IMAGE_SIZE, channels=1, mean=(0.4,), std=(0.3,),
                                  resize="pad", registered_model_name=name)
    # The same images as the training pipeline prepares them (no augmentation configured).
    datasets = (datamodule.train_dataset, datamodule.val_dataset, datamodule.test_dataset)
    items = [(ids, dataset[row]["image"]) for dataset in datasets for row, ids in enumerate(dataset.ids)]
    ids = [sample_id for sample_id, _ in items]
    prepared = torch.stack([tensor for _, tensor in items])
    net = HeatlensModule.load_from_checkpoint(checkpoint, map_location="cpu").net.eval()
    with torch.no_grad():
        expected = net(prepared).softmax(1).numpy()
    return {"run": run, "info": info, "name": name, "ids": ids, "images": [raw[i] for i in ids],
            "prepared": prepared, "expected": expected, "net": net, "distribution_scans": len(scans)}


def _fresh_process(script: str, env_extra: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


PREDICT_IN_FRESH_PROCESS = """
import os, sys, numpy as np, mlflow
images = list(np.load(os.environ["IMAGES"], allow_pickle=True)["images"])
model = mlflow.pyfunc.load_model(os.environ["MODEL_URI"])
plain = model.predict({"image": images})
table = model.predict({"image": images}, params={"return_heatmaps": True})
np.savez(os.environ["OUT"], plain=plain[%r].to_numpy(), probs=table[%r].to_numpy(),
         loaded=sorted({m.split(".")[0] for m in sys.modules}),
         **{f"heat{i}": h for i, h in enumerate(table["heatmaps"])})
""" % (CLASSES, CLASSES)


def test_registered_model_predicts_in_a_fresh_process(logged, tmp_path) -> None:
    images = np.empty(len(logged["images"]), dtype=object)
    images[:] = logged["images"]
    np.savez(tmp_path / "images.npz", images=images)
    _fresh_process(PREDICT_IN_FRESH_PROCESS, {"IMAGES": str(tmp_path / "images.npz"), "OUT": str(tmp_path / "out.npz"),
                                              "MODEL_URI": f"models:/{logged['name']}/1"})
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["probs"].sum(1), 1.0, atol=1e-6)
    # Same numbers as the checkpoint's forward on the training pipeline's tensors of the same files.
    np.testing.assert_allclose(out["plain"], logged["expected"], atol=1e-5)
    np.testing.assert_allclose(out["probs"], logged["expected"], atol=1e-5)
    for i, image in enumerate(logged["images"]):
        assert out[f"heat{i}"].shape == (len(CLASSES), *image.shape[:2])
        assert out[f"heat{i}"].dtype == np.float32 and out[f"heat{i}"].min() >= 0
    # Loading and predicting need no training stack: no Lightning, torchmetrics or torchvision is imported.
    training_stack = {"lightning", "torchmetrics", "torchvision"} & set(out["loaded"].tolist())
    assert not training_stack, f"serving imported {sorted(training_stack)}"


def test_heatmaps_follow_the_letterbox_back_to_the_image(logged) -> None:
    """A 40 x 56 image letterboxed into 32 px: scale 32/56, 23 rows (round(22.86)) placed from row 4
    ((32 - 23) // 2). Its maps are the network's Grad-CAM over rows 4..26 stretched back to 40 x 56."""
    model = mlflow.pyfunc.load_model(logged["info"].model_uri)
    first = logged["ids"].index(next(i for i in logged["ids"] if i.startswith("A/")))
    table = model.predict({"image": [logged["images"][first]]}, params={"return_heatmaps": True})
    out = cam.gradcam_all_classes(logged["net"], logged["prepared"][first:first + 1])
    square = cam.upsample(cam.relu(out.maps), (IMAGE_SIZE, IMAGE_SIZE))
    expected = cam.upsample(square[:, :, 4:27, :], (40, 56))[0].numpy()
    np.testing.assert_allclose(table["heatmaps"][0], expected, rtol=1e-5, atol=1e-6)


def test_batch_arrays_rgb_input_and_bad_input(logged) -> None:
    model = mlflow.pyfunc.load_model(f"runs:/{logged['run'].run_id}/model")
    grey = [image for image, sample_id in zip(logged["images"], logged["ids"]) if sample_id.startswith("C/")]
    rows = [i for i, sample_id in enumerate(logged["ids"]) if sample_id.startswith("C/")]
    batch = model.predict({"image": np.stack(grey)})  # a (N, H, W) batch array
    np.testing.assert_allclose(batch[CLASSES].to_numpy(), logged["expected"][rows], atol=1e-5)
    as_rgb = model.predict({"image": [np.repeat(g[..., None], 3, axis=2) for g in grey]})  # grey model, RGB input
    np.testing.assert_allclose(as_rgb[CLASSES].to_numpy(), logged["expected"][rows], atol=1e-5)
    with pytest.raises(ModelInputError, match=r"image 1: expected H x W or H x W x 1\|3\|4 pixels, got shape \(4, 4, 2\)"):
        model.predict({"image": [grey[0], np.zeros((4, 4, 2), np.uint8)]})
    with pytest.raises(ModelInputError, match="image 0: expected uint8 pixels"):
        model.predict({"image": [np.full((8, 8), 0.5)]})
    with pytest.raises(ModelInputError, match="image 0: its rows or pixels differ in length"):
        model.predict({"image": [[[0, 1], [2]]]})  # ragged JSON-style nested lists


def test_model_has_signature_input_example_and_registry_entry(logged) -> None:
    info = get_model_info(f"runs:/{logged['run'].run_id}/model")
    assert info.signature.inputs.input_names() == ["image"]
    assert info.signature.outputs.input_names() == [*CLASSES, "heatmaps"]
    assert [(p.name, p.default) for p in info.signature.params] == [("return_heatmaps", False),
                                                                      ("return_decisions", False)]
    assert info.saved_input_example_info is not None
    client = MlflowClient(logged["run"].tracking_uri)
    version = client.get_model_version(logged["name"], "1")
    assert version.run_id == logged["run"].run_id
    assert client.get_run(logged["run"].run_id).data.tags["model_uri"] == logged["info"].model_uri


def test_the_model_pins_the_installed_versions_without_listing_every_installed_file(logged) -> None:
    # Pinned to what is installed, the requirements cannot mismatch: MLflow's check (and its scan of every
    # installed distribution) is skipped while the model is logged, and put back afterwards.
    assert logged["distribution_scans"] == 0
    for module in (environment, mlflow.pyfunc):
        assert module.warn_dependency_requirement_mismatches is requirements_utils.warn_dependency_requirement_mismatches
    pins = dict(line.split("==") for line in Path(mlflow.pyfunc.get_model_dependencies(logged["info"].model_uri))
                .read_text().split())
    assert set(pins) == {"heatlens", "torch", "timm", "mlflow"}
    for name, pinned in pins.items():
        assert requirements_utils._check_requirement_satisfied(f"{name}=={pinned}") is None, name


def test_mlflow_models_serve_returns_probabilities_and_heatmaps(logged, tmp_path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{logged['name']}/1",
               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    chosen = [0, 5, len(logged["images"]) - 1]  # different sizes and sources in one request
    body = {"inputs": [logged["images"][i].tolist() for i in chosen], "params": {"return_heatmaps": True}}
    with running(command, f"http://127.0.0.1:{port}/ping", tmp_path / "serve.log"):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            predictions = json.load(response)["predictions"]
    probs = np.array([[row[name] for name in CLASSES] for row in predictions])
    np.testing.assert_allclose(probs, logged["expected"][chosen], atol=1e-5)
    for row, i in zip(predictions, chosen):
        assert np.asarray(row["heatmaps"]).shape == (len(CLASSES), *logged["images"][i].shape[:2])
