"""The selected checkpoint as an MLflow Model (pyfunc): images in, class probabilities and Grad-CAM maps out.

`predict` takes a DataFrame (or a dict) with column `image`: uint8 arrays of any size, H x W (grey)
or H x W x 3 / 4 (RGB / RGBA), or a batch array (N, H, W[, C]). Each image is prepared as the
training's evaluation transform prepares it (`data.resize` into `data.image_size`, `data.channels`,
mean / std normalisation). It returns one row per image: a probability column per class and, with
`params={"return_heatmaps": True}`, column `heatmaps`: the Grad-CAM map of every class, (C, H, W)
at that image's own size (ReLU of the class-weighted feature map, not normalised). Probabilities are
temperature-scaled when the run fitted a temperature (`clinical.calibration: temperature`); with
`params={"return_decisions": True}`, column `<Class>_decision` says whether that probability reaches
the class's logged operating point (classes without one get no column). A multi-label model
(`data.task: multilabel`) returns one independent sigmoid probability column per finding, heatmaps
(K, H, W) of every finding, and decisions at each finding's operating point.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.utils import environment

from heatlens.data.decode import DecodeOptions, fit_image
from heatlens.data.pixels import Placement
from heatlens.data.transforms import build_transform
from heatlens.explain import cam
from heatlens.models import build_model
from heatlens.models.checkpoint_read import load_checkpoint, load_module
from heatlens.tracking.errors import ModelInputError
from heatlens.tracking.run import RunHandle

MODEL_NAME = "model"  # `runs:/<run id>/model`
IMAGE_COLUMN = "image"
HEATMAPS_COLUMN = "heatmaps"
RETURN_HEATMAPS = "return_heatmaps"
RETURN_DECISIONS = "return_decisions"
DECISION_SUFFIX = "_decision"
BATCH_SIZE = 16
# Pixels (H x W summed over the images) one request may hold: the served model's memory stays bounded
# (heatmaps: classes x pixels floats). 16 images of 2048 x 2048 fit.
MAX_REQUEST_PIXELS = 16 * 2048 * 2048
WEIGHTS_ARTIFACT = "weights"
# Models from code: MLflow stores this file with the model and runs it to build the model, no pickle.
MODEL_CODE = Path(__file__).with_name("served_model.py")
# What loading and predicting import; `heatlens` brings the rest of its dependencies.
REQUIREMENTS = ("heatlens", "torch", "timm", "mlflow")


class HeatlensClassifier(mlflow.pyfunc.PythonModel):
    """A trained heatlens network with its preprocessing; see the module docstring for the contract."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        config = context.model_config
        self.class_names = list(config["class_names"])
        self.image_size = int(config["image_size"])
        self.channels = int(config["channels"])
        self.resize = str(config["resize"])
        self.transform = build_transform(None, config["mean"], config["std"], train=False)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        net = build_model(config["backbone"], config["head"], len(self.class_names), self.channels, load_weights=False)
        state = load_checkpoint(context.artifacts[WEIGHTS_ARTIFACT], "model artifact weights")
        net.load_state_dict(state)
        self.net = net.to(self.device).eval()
        self.temperature = float(config.get("temperature") or 1.0)
        self.thresholds = {name: float(t) for name, t in (config.get("thresholds") or {}).items()}
        self.multilabel = config.get("task", "multiclass") == "multilabel"

    def probabilities(self, logits: torch.Tensor) -> np.ndarray:
        """Sigmoid per finding (multi-label), else temperature-scaled softmax over the classes."""
        if self.multilabel:
            return logits.float().sigmoid().cpu().numpy()
        return (logits.float() / self.temperature).softmax(dim=1).cpu().numpy()

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        images = images_of(model_input)
        if not images:
            raise ModelInputError(f"model input column {IMAGE_COLUMN!r} holds no image")
        with_heatmaps = bool((params or {}).get(RETURN_HEATMAPS, False))
        probabilities, heatmaps = [], []
        for start in range(0, len(images), BATCH_SIZE):
            chunk = images[start:start + BATCH_SIZE]
            prepared = [self.prepare(image) for image in chunk]
            batch = torch.stack([tensor for tensor, _ in prepared]).to(self.device)
            if with_heatmaps:
                out = cam.gradcam_all_classes(self.net, batch)
                logits = out.logits
                square = cam.upsample(cam.relu(out.maps), (self.image_size, self.image_size)).cpu()
                heatmaps += [in_image_geometry(maps, placement, image.shape[:2])
                             for maps, (_, placement), image in zip(square, prepared, chunk)]
            else:
                with torch.inference_mode():
                    logits = self.net(batch)
            probabilities.append(self.probabilities(logits))
        table = pd.DataFrame(np.concatenate(probabilities).astype(np.float64), columns=self.class_names)
        if (params or {}).get(RETURN_DECISIONS, False):
            for name, threshold in self.thresholds.items():
                table[f"{name}{DECISION_SUFFIX}"] = table[name] >= threshold
        if with_heatmaps:
            table[HEATMAPS_COLUMN] = heatmaps
        return table

    def prepare(self, image: np.ndarray) -> tuple[torch.Tensor, Placement]:
        """One image -> the network's normalised (channels, size, size) tensor, and where it was placed."""
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]  # RGBA: alpha dropped, as the training's decoder does
        pixels, placement = fit_image(image, DecodeOptions(self.image_size, self.channels, self.resize))
        return self.transform(image=pixels)["image"], placement


def images_of(model_input: pd.DataFrame | Mapping[str, Any]) -> list[np.ndarray]:
    """The `image` column as uint8 arrays (H, W) or (H, W, 1 | 3 | 4); JSON lists of 0..255 integers are accepted."""
    if IMAGE_COLUMN not in model_input:
        raise ModelInputError(f"model input has no column {IMAGE_COLUMN!r}: give {{{IMAGE_COLUMN!r}: [images]}}")
    column = model_input[IMAGE_COLUMN]
    if isinstance(column, (str, bytes)):
        raise ModelInputError(f"model input column {IMAGE_COLUMN!r} is a string: give arrays of pixels")
    images = [_uint8_image(image, number) for number, image in
              enumerate(list(column.tolist() if isinstance(column, pd.Series) else column))]
    pixels = sum(image.shape[0] * image.shape[1] for image in images)
    if pixels > MAX_REQUEST_PIXELS:
        raise ModelInputError(f"the request holds {pixels} pixels, more than the {MAX_REQUEST_PIXELS} one request "
                              f"may hold: send fewer or smaller images per request")
    return images


def _uint8_image(image: Any, number: int) -> np.ndarray:
    if isinstance(image, (str, bytes)):
        raise ModelInputError(f"image {number}: a string, expected an array of pixels (integers 0..255)")
    try:
        array = np.asarray(image)
    except ValueError:  # nested lists of unequal lengths (JSON input)
        raise ModelInputError(f"image {number}: its rows or pixels differ in length") from None
    if array.dtype.kind in "USO" and not np.issubdtype(array.dtype, np.number):
        raise ModelInputError(f"image {number}: holds strings or objects, expected integers 0..255")
    if array.size == 0:
        raise ModelInputError(f"image {number}: empty, it holds no pixel")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))) or min(array.shape[:2]) < 1:
        raise ModelInputError(f"image {number}: expected H x W or H x W x 1|3|4 pixels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
        raise ModelInputError(f"image {number}: NaN or infinite pixel values")
    if not np.issubdtype(array.dtype, np.number) or array.size and (
        array.min() < 0 or array.max() > 255 or not np.array_equal(array, np.round(array))
    ):
        raise ModelInputError(f"image {number}: expected uint8 pixels (integers 0..255), got {array.dtype} values")
    return array.astype(np.uint8)


def in_image_geometry(maps: torch.Tensor, placement: Placement, shape: Sequence[int]) -> np.ndarray:
    """(C, size, size) maps over the network's input -> (C, H, W) over the original image: the part
    the placement kept is resized back onto its pixels; pixels the network never saw (outside a
    crop) are 0."""
    height, width = int(shape[0]), int(shape[1])
    box_top, box_left, box_rows, box_cols = placement.box
    inside = maps[:, box_top:box_top + box_rows, box_left:box_left + box_cols]
    top, bottom, left, right = placement.keep
    rows = slice(round(top * height), round(bottom * height))
    cols = slice(round(left * width), round(right * width))
    kept = (rows.stop - rows.start, cols.stop - cols.start)
    out = torch.zeros((maps.shape[0], height, width), dtype=torch.float32)
    out[:, rows, cols] = cam.upsample(inside[None], kept)[0] if inside.shape[-2:] != kept else inside
    return out.numpy()


def model_signature(class_names: Sequence[str], decided: Sequence[str] = ()) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec(AnyType(), IMAGE_COLUMN)]),
        outputs=Schema([*(ColSpec("double", name) for name in class_names),
                        ColSpec(AnyType(), HEATMAPS_COLUMN, required=False),
                        *(ColSpec("boolean", f"{name}{DECISION_SUFFIX}", required=False) for name in decided)]),
        params=ParamSchema([ParamSpec(RETURN_HEATMAPS, "boolean", False),
                            ParamSpec(RETURN_DECISIONS, "boolean", False)]),
    )


def log_selected_model(
    run: RunHandle,
    checkpoint_path: str | Path,
    *,
    image_size: int,
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    resize: str,
    registered_model_name: str | None = None,
    temperature: float | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> ModelInfo | None:
    """Log the network of `checkpoint_path` (a HeatlensModule checkpoint) as the run's MLflow Model
    `model` (`runs:/<run id>/model`, tag `model_uri`), with the preprocessing given here (the
    datamodule's `image_size`, `channels`, `mean`, `std` and `data.resize`), the fitted `temperature`
    and the operating points' `thresholds` (class -> threshold on the served probabilities); with
    `registered_model_name`, also a new version of that registered model. While the run's tracking
    server is unreachable, the call waits in the run's outbox and None is returned."""
    if run.defer("log_selected_model", checkpoint_path, image_size=int(image_size), channels=int(channels),
                 mean=[float(m) for m in mean], std=[float(s) for s in std], resize=resize,
                 registered_model_name=registered_model_name,
                 temperature=None if temperature is None else float(temperature),
                 thresholds={name: float(t) for name, t in (thresholds or {}).items()}):
        return None
    module = load_module(checkpoint_path, "checkpoint")
    class_names = list(module.class_names)
    config = {
        "backbone": module.hparams.cfg["backbone"], "head": module.hparams.cfg["head"], "class_names": class_names,
        "task": module.task,
        "image_size": int(image_size), "channels": int(channels), "resize": resize,
        "mean": [float(m) for m in mean], "std": [float(s) for s in std],
        "temperature": temperature, "thresholds": {name: float(t) for name, t in (thresholds or {}).items()},
    }
    info = run.client.get_run(run.run_id)
    example = np.linspace(0, 255, 16 * 16 * channels).astype(np.uint8).reshape(16, 16, channels)
    with (tempfile.TemporaryDirectory(prefix="heatlens-model-") as tmp, _global_tracking_uri(run.tracking_uri),
          _no_requirement_check()):
        weights = Path(tmp) / "weights.pt"
        torch.save(module.net.state_dict(), weights)
        # Created here, not by Model.log, so the model lands in the run's experiment whatever the
        # process's active experiment is.
        logged = run.client.create_logged_model(
            info.info.experiment_id, name=MODEL_NAME, source_run_id=run.run_id, params=info.data.params
        )
        model_info = Model.log(
            artifact_path=None, name=MODEL_NAME, flavor=_PyfuncWithConfig(config), run_id=run.run_id,
            model_id=logged.model_id, python_model=str(MODEL_CODE), artifacts={WEIGHTS_ARTIFACT: str(weights)},
            signature=model_signature(class_names, list(config["thresholds"])), input_example={IMAGE_COLUMN: [example]},
            pip_requirements=pip_requirements(),
            registered_model_name=registered_model_name,
        )
    run.set_tags({"model_uri": model_info.model_uri})
    return model_info


class _PyfuncWithConfig:
    """mlflow.pyfunc with `model_config` given here: `Model.log(model_config=...)` would also log the config
    as run params (`backbone/name` beside the run's own `backbone.name`); the MLmodel file still holds it."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def save_model(self, **kwargs: Any) -> None:
        mlflow.pyfunc.save_model(**kwargs, model_config=self.config)


@contextmanager
def _no_requirement_check() -> Iterator[None]:
    """MLflow checks that this environment satisfies the model's pip requirements when it saves the model and
    again when it loads it to validate the input example, and first lists the files of every installed
    distribution (`packages_distributions`: 0.7 s of CPU per process, measured). Ours are `_pinned` to the
    installed versions, so the check cannot fail: skipped while our model is logged. A module of an MLflow
    without the hook is left as it is."""
    patched = [m for m in (environment, mlflow.pyfunc) if hasattr(m, "warn_dependency_requirement_mismatches")]
    checks = [m.warn_dependency_requirement_mismatches for m in patched]
    for module in patched:
        module.warn_dependency_requirement_mismatches = lambda requirements: None
    try:
        yield
    finally:
        for module, check in zip(patched, checks):
            module.warn_dependency_requirement_mismatches = check


def pip_requirements() -> list[str]:
    """The served model's requirements, pinned to this environment's versions. Given explicitly: without them
    MLflow infers them by loading the model in a subprocess (6 s of CPU, measured)."""
    return [_pinned(name) for name in REQUIREMENTS]


def _pinned(distribution: str) -> str:
    return f"{distribution}=={version(distribution).split('+')[0]}"  # no local label (+cpu): pip cannot find those


@contextmanager
def _global_tracking_uri(uri: str) -> Iterator[None]:
    """Model.log writes through MLflow's process-wide tracking URI."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
