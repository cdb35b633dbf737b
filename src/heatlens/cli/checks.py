"""Every value of a training config checked before an image is decoded or an MLflow run exists.

A wrong option must cost the user one line and nothing else: no half-created run, no minutes of
decoding first. `check_job` builds everything that needs no data pass (datamodule listing, callbacks,
trainer) and raises a `HeatlensError`, each naming the key and value at fault.
"""

from __future__ import annotations

import numbers
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from heatlens.errors import HeatlensError

if TYPE_CHECKING:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from heatlens.callbacks import PostFitExplanations
    from heatlens.data import HeatlensDataModule

# Lightning, the data layer, callbacks and MLflow are imported inside the checks that need them: the
# values checked first (`check_config`) need torch only, so a typo costs about one `import torch`.


# `selection_metric: null` (conf/train.yaml) means the task's default.
SELECTION_DEFAULTS = {"multiclass": "val/recall_macro", "multilabel": "val/auroc_macro"}


class TrainConfigError(HeatlensError):
    """A training option is wrong: the message names the key and value at fault."""


@dataclass
class TrainJob:
    """What a checked config builds before any data pass: the run's config and the objects to train with."""

    config: dict
    datamodule: HeatlensDataModule
    class_names: list[str]
    checkpoints: dict[str, ModelCheckpoint]
    trainer: L.Trainer
    resume_run_id: str | None


def resolved(cfg: DictConfig) -> dict:
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise TrainConfigError(f"the configuration does not resolve: {err}") from None


def check_job(cfg: DictConfig) -> TrainJob:
    """Check the whole config and build the job's objects; raises a HeatlensError (each layer's subclass)."""
    from heatlens.callbacks.checkpoints import LAST, monitors, recall_checkpoints
    from heatlens.data import build_datamodule
    from heatlens.models.net import normalization_for
    from heatlens.tracking.setup import check_logger_config

    config = check_config(cfg)
    check_trainer_options(config["trainer"])
    check_logger_config(cfg.logger)
    mean, std = normalization_for(cfg.backbone, int(cfg.data.channels))
    datamodule = build_datamodule(cfg.data, mean=mean, std=std, seed=config["seed"])
    multilabel = datamodule.settings.task == "multilabel"
    class_names = _class_names(datamodule, multilabel)
    healthy = cfg.data.get("healthy_class")
    # Multi-label: an image without positive findings is the healthy one; data.healthy_class is unused.
    if healthy is not None and not multilabel and healthy not in class_names:
        raise TrainConfigError(f"data.healthy_class={healthy!r}: not one of the classes {class_names}")
    tolerance = float(config.get("selection_tolerance", 0.0))
    checkpoints = recall_checkpoints(class_names, checkpoint_dir(cfg), tolerance=tolerance, multilabel=multilabel)
    if cfg.selection_metric not in checkpoints or cfg.selection_metric == LAST:
        choices = [m for m in checkpoints if m != LAST]
        other = "multiclass" if multilabel else "multilabel"
        if cfg.selection_metric in monitors(class_names, not multilabel):
            raise TrainConfigError(f"selection_metric={cfg.selection_metric!r} is a {other} metric but "
                                   f"data.task={datamodule.settings.task}: choose one of {choices}")
        raise TrainConfigError(f"selection_metric={cfg.selection_metric!r}: choose one of {choices}")
    resume_run_id = resume_reference(cfg.ckpt_path)
    callbacks = [
        *checkpoints.values(),
        *_trial_callbacks(cfg),
        *instantiate_all(cfg.callbacks, "callbacks"),
        explanations(cfg.explain),
    ]
    trainer = build_trainer(cfg, callbacks)
    return TrainJob(config, datamodule, class_names, checkpoints, trainer, resume_run_id)


def check_config(cfg: DictConfig) -> dict:
    """The values that need no Lightning, data or MLflow to judge (seed, model, optimizer, clinical): checked
    first and cheaply. Returns the resolved config."""
    from heatlens.clinical.settings import clinical_settings
    from heatlens.models.checks import validate_model_config

    _default_selection_metric(cfg)
    config = resolved(cfg)
    seed = config.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TrainConfigError(f"seed={seed!r}: expected an integer")
    tolerance = config.get("selection_tolerance", 0.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real) or not 0 <= tolerance < 1:
        raise TrainConfigError(f"selection_tolerance={tolerance!r}: expected a number in [0, 1)")
    clinical_settings(config.get("clinical"))
    channels = config["data"].get("channels")
    validate_model_config(config["backbone"], config["head"], config["optimizer"], None, channels)
    try:
        validate_model_config(config["backbone"], config["head"], config["optimizer"], config.get("scheduler"),
                              channels)
    except HeatlensError:
        # `scheduler.T_max` interpolates `trainer.max_epochs`: the error must name the key typed.
        check_trainer_options(config["trainer"])
        raise
    _check_input_size(cfg)
    return config


def _default_selection_metric(cfg: DictConfig) -> None:
    """Fill `selection_metric: null` with the default of `data.task`, in `cfg` itself: the sweep objective,
    the checkpoint tested and the logged params all read it from there."""
    if cfg.get("selection_metric") is not None:
        return
    task = cfg.data.get("task", "multiclass")
    if task not in SELECTION_DEFAULTS:
        raise TrainConfigError(f"data.task={task!r}: expected one of {list(SELECTION_DEFAULTS)}")
    cfg.selection_metric = SELECTION_DEFAULTS[task]


def _trial_callbacks(cfg: DictConfig) -> list[L.Callback]:
    """None unless the job is a trial of the Optuna sweeper: a plain run never imports Optuna."""
    if not cfg.get("trial"):
        return []
    from heatlens.callbacks.pruning import trial_callbacks

    return trial_callbacks(cfg)


def _check_input_size(cfg: DictConfig) -> None:
    from heatlens.models.registry import backbone_spec

    minimum, size = backbone_spec(cfg.backbone.name).min_input_size, cfg.data.image_size
    if isinstance(size, int) and size < minimum:
        raise TrainConfigError(f"data.image_size={size} is below the {minimum} px that backbone={cfg.backbone.name} needs")


def _class_names(datamodule: HeatlensDataModule, multilabel: bool) -> list[str]:
    """The classes (findings), known without generating the phantom or decoding any image."""
    from heatlens.data.formats import phantom_spec
    from heatlens.data.phantom import CLASS_NAMES as PHANTOM_CLASSES

    if datamodule.settings.format == "phantom" and multilabel:
        from heatlens.data.phantom_multilabel import FINDINGS

        return list(FINDINGS)
    if datamodule.settings.format == "phantom":
        phantom_spec(datamodule.settings)  # checks the phantom's own keys
        return list(PHANTOM_CLASSES)
    return datamodule.class_names


def check_trainer_options(options: dict[str, Any]) -> None:
    """Each `trainer.<key>` against the type Lightning declares for it (values it cannot judge pass).

    Done before reporting a scheduler error: `scheduler.T_max` interpolates `trainer.max_epochs`.
    """
    import lightning as L

    hints = typing.get_type_hints(L.Trainer.__init__)
    for key, value in options.items():
        if key not in hints or key in ("logger", "callbacks", "return"):
            raise TrainConfigError(f"trainer.{key}: not a lightning.Trainer option")
        if not _fits(value, hints[key]):
            raise TrainConfigError(f"trainer.{key}={value!r}: expected {_described(hints[key])}")


def _fits(value: Any, hint: Any) -> bool:
    if hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint in (int, float):
        return isinstance(value, numbers.Real if hint is float else numbers.Integral) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    return True  # a class or container type: Lightning judges it


def _described(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " or ".join(_described(arg) for arg in args)
    if origin is typing.Literal:
        return " or ".join(repr(arg) for arg in args)
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback]) -> L.Trainer:
    """The Lightning Trainer from `cfg.trainer` (its keys are Trainer keyword arguments), without a logger yet."""
    import lightning as L
    from hydra.core.hydra_config import HydraConfig
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from heatlens.cli.ddp import ddp_strategy
    from heatlens.models.checkpoint_io import AtomicCheckpointIO

    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    # DDP children must re-run only this job, not the whole sweep (Lightning issue 11300).
    options["strategy"] = ddp_strategy(options.get("strategy", "auto"))
    # Checkpoints are written atomically and read with weights_only=True (models/checkpoint_io.py).
    options["plugins"] = [*(options.get("plugins") or []), AtomicCheckpointIO()]
    try:
        return L.Trainer(**options, callbacks=callbacks, logger=False,
                         default_root_dir=HydraConfig.get().runtime.output_dir)
    except (TypeError, ValueError, MisconfigurationException) as err:
        raise TrainConfigError(f"trainer: {err} (keys: {sorted(options)})") from None


def explanations(explain: DictConfig) -> PostFitExplanations:
    """The post-fit explanations: every step of `explain.callbacks`, on one sample of the test set."""
    from heatlens.callbacks.post_fit import PostFitExplanations

    steps = instantiate_all(explain.get("callbacks"), "explain.callbacks")
    return PostFitExplanations(steps, max_images=explain.max_images, sample=explain.sample,
                               methods=explain.get("methods", ["gradcam"]))


def instantiate_all(nodes: DictConfig | None, key: str) -> list[L.Callback]:
    import hydra
    from hydra.errors import InstantiationException

    instances = []
    for name, node in (nodes or {}).items():
        try:
            instances.append(hydra.utils.instantiate(node))
        except InstantiationException as err:
            raise TrainConfigError(f"{key}.{name} cannot be built: {err}") from None
    return instances


def checkpoint_dir(cfg: DictConfig) -> Path:
    """A resumed job writes beside the checkpoint it resumes from, so the best scores carry over."""
    from hydra.core.hydra_config import HydraConfig

    if cfg.ckpt_path:
        return Path(cfg.ckpt_path).resolve().parent
    return Path(HydraConfig.get().runtime.output_dir) / "checkpoints"


def resume_reference(ckpt_path: str | None) -> str | None:
    """The MLflow run id stored in the checkpoint to resume from (None: start a new run)."""
    from heatlens.callbacks.checkpoints import run_in_checkpoint
    from heatlens.models.checkpoint_read import UnsafeCheckpointError

    if ckpt_path is None:
        return None
    if not Path(ckpt_path).is_file():
        raise TrainConfigError(f"ckpt_path={ckpt_path} does not exist")
    try:
        reference = run_in_checkpoint(ckpt_path)
    except UnsafeCheckpointError:
        raise  # its line already names the file and why
    except Exception as err:  # torch.load raises many types on a file that is no checkpoint
        raise TrainConfigError(f"ckpt_path={ckpt_path} is not a readable checkpoint: {err}") from None
    return None if reference is None else reference["run_id"]
