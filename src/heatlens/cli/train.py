"""`python train.py [overrides]`: train, test the selected checkpoint and report, all in one MLflow run."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from heatlens.callbacks.checkpoints import (
    RunInCheckpoint,
    checkpoint_epoch,
    checkpoint_files,
    recall_checkpoints,
    run_in_checkpoint,
)
from heatlens.cli.ddp import ddp_job, ddp_strategy
from heatlens.data import DataError, build_datamodule
from heatlens.models import HeatlensModule, ModelConfigError, backbone_spec, build_model, model_facts, normalization_for
from heatlens.paths import CONFIG_DIR, PROJECT_ROOT
from heatlens.tracking import (
    RunHandle,
    TrackingError,
    create_logger,
    git_commit,
    handle_for,
    log_checkpoints,
    log_run_config,
    log_test_reports,
    record_failure,
)

log = logging.getLogger(__name__)

OmegaConf.register_new_resolver("heatlens.project_root", lambda: str(PROJECT_ROOT), replace=True)


class TrainConfigError(ValueError):
    """A training option is wrong: the message names the key and value at fault."""


# Errors caused by the user's input: reported as one line, without a traceback.
USER_ERRORS = (TrainConfigError, DataError, ModelConfigError, TrackingError)


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra task: returns the best validation value of `selection_metric` (for sweepers)."""
    try:
        with ddp_job():  # each job of a sweep: its own DDP process group, cleaned up at its end
            return train(cfg)
    except USER_ERRORS as error:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the launcher records it and goes on with the other jobs
        sys.exit(f"heatlens-train: error: {error}")


def train(cfg: DictConfig) -> float:
    """Run one training job as configured; every failure is recorded in its MLflow run."""
    L.seed_everything(cfg.seed, workers=True)
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise TrainConfigError(f"the configuration does not resolve: {err}") from None
    resume = _resume_reference(cfg.ckpt_path)
    logger = create_logger(cfg.logger, _run_name(cfg), _tags(cfg), run_id=resume)
    run = handle_for(logger) if rank_zero_only.rank == 0 else None
    try:
        if run is not None:
            _log_start(cfg, config, run, resumed=resume is not None)
        best = _fit_and_test(cfg, config, logger, run)
        if run is not None:
            run.set_status("FINISHED")
            _print_location(run, cfg.logger.experiment_name)
        return best
    except KeyboardInterrupt:
        if run is not None:
            run.set_status("KILLED")
        raise
    except Exception as error:
        if run is not None:
            record_failure(run, error)
        raise


def _fit_and_test(cfg: DictConfig, config: dict, logger: Any, run: RunHandle | None) -> float:
    mean, std = normalization_for(cfg.backbone, cfg.data.channels)
    datamodule = build_datamodule(cfg.data, mean=mean, std=std)
    datamodule.prepare_data()
    datamodule.setup("fit")
    _check_input_size(cfg, datamodule.image_size)
    net = build_model(cfg.backbone, cfg.head, datamodule.num_classes, datamodule.channels)
    weights = datamodule.class_weights
    module = HeatlensModule(
        cfg=config,
        class_names=datamodule.class_names,
        in_chans=datamodule.channels,
        healthy_class=datamodule.healthy_class,
        class_weights=None if weights is None else weights.tolist(),
        net=net,
    )
    if run is not None:
        run.log_metrics(model_facts(net))
    checkpoints = recall_checkpoints(datamodule.class_names, _checkpoint_dir(cfg))
    if cfg.selection_metric not in checkpoints or cfg.selection_metric == "last":
        choices = [m for m in checkpoints if m != "last"]
        raise TrainConfigError(f"selection_metric={cfg.selection_metric!r}: choose one of {choices}")
    callbacks = [
        *checkpoints.values(),
        RunInCheckpoint(),
        *_instantiate_all(cfg.callbacks, "callbacks"),
        *_instantiate_all(cfg.explain.get("callbacks"), "explain.callbacks"),
    ]
    trainer = build_trainer(cfg, callbacks, logger)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    selected = checkpoints[cfg.selection_metric]
    best_path = selected.best_model_path or checkpoints["last"].best_model_path
    trainer.test(module, datamodule=datamodule, ckpt_path=best_path)
    trainer.predict(module, dataloaders=datamodule.val_dataloader(), ckpt_path=best_path, return_predictions=False)
    if run is not None:
        log_test_reports(
            run,
            datamodule.class_names,
            datamodule.healthy_class,
            test=module.predictions["test"],
            val=module.predictions["predict"],
            test_ids=datamodule.test_dataset.ids,
            test_hash=datamodule.test_hash,
            selected_epoch=checkpoint_epoch(best_path),
        )
        scores = {m: None if cb.best_model_score is None else float(cb.best_model_score) for m, cb in checkpoints.items()}
        log_checkpoints(run, checkpoint_files(checkpoints), scores, cfg.selection_metric)
    return float("nan") if selected.best_model_score is None else float(selected.best_model_score)


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback], logger: Any) -> L.Trainer:
    """The Lightning Trainer from `cfg.trainer` (its keys are Trainer keyword arguments)."""
    options = OmegaConf.to_container(cfg.trainer, resolve=True)
    # DDP children must re-run only this job, not the whole sweep (Lightning issue 11300).
    options["strategy"] = ddp_strategy(options.get("strategy", "auto"))
    try:
        return L.Trainer(
            **options, callbacks=callbacks, logger=logger, default_root_dir=HydraConfig.get().runtime.output_dir
        )
    except TypeError as err:
        raise TrainConfigError(f"trainer: {err} (keys: {sorted(options)})") from None


def _instantiate_all(nodes: DictConfig | None, key: str) -> list[L.Callback]:
    instances = []
    for name, node in (nodes or {}).items():
        try:
            instances.append(hydra.utils.instantiate(node))
        except InstantiationException as err:
            raise TrainConfigError(f"{key}.{name} cannot be built: {err}") from None
    return instances


def _check_input_size(cfg: DictConfig, image_size: int) -> None:
    minimum = backbone_spec(cfg.backbone.name).min_input_size
    if image_size < minimum:
        raise TrainConfigError(
            f"data.image_size={image_size} is below the {minimum} px that backbone={cfg.backbone.name} needs"
        )


def _checkpoint_dir(cfg: DictConfig) -> Path:
    """A resumed job writes beside the checkpoint it resumes from, so the best scores carry over."""
    if cfg.ckpt_path:
        return Path(cfg.ckpt_path).resolve().parent
    return Path(HydraConfig.get().runtime.output_dir) / "checkpoints"


def _resume_reference(ckpt_path: str | None) -> str | None:
    """The MLflow run id stored in the checkpoint to resume from (None: start a new run)."""
    if ckpt_path is None:
        return None
    if not Path(ckpt_path).is_file():
        raise TrainConfigError(f"ckpt_path={ckpt_path} does not exist")
    reference = run_in_checkpoint(ckpt_path)
    if reference is None:
        log.warning("ckpt_path=%s names no MLflow run: resuming into a new run", ckpt_path)
        return None
    return reference["run_id"]


def _dataset_name(cfg: DictConfig) -> str:
    return str(HydraConfig.get().runtime.choices.get("data") or cfg.data.get("name", "data"))


def _run_name(cfg: DictConfig) -> str:
    return f"{cfg.backbone.name}-{_dataset_name(cfg)}"


def _sweep_id() -> str:
    """The sweep folder (relative to the project when inside it) shared by all jobs of a multirun."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return "none"
    sweep_dir = Path(hydra_cfg.sweep.dir).resolve()
    return str(sweep_dir.relative_to(PROJECT_ROOT)) if sweep_dir.is_relative_to(PROJECT_ROOT) else str(sweep_dir)


def _tags(cfg: DictConfig) -> dict[str, str]:
    return {
        "backbone": str(cfg.backbone.name),
        "dataset": _dataset_name(cfg),
        "git_commit": git_commit(),
        "sweep_id": _sweep_id(),
    }


def _log_start(cfg: DictConfig, config: dict, run: RunHandle, resumed: bool) -> None:
    hydra_cfg = HydraConfig.get()
    if resumed:
        run.set_status("RUNNING")
        run.set_tags({"resumed_from": str(cfg.ckpt_path)})
    run.set_tags({"output_dir": hydra_cfg.runtime.output_dir})
    overrides = OmegaConf.to_yaml(OmegaConf.create(list(hydra_cfg.overrides.task)))
    log_run_config(run, config, OmegaConf.to_yaml(cfg, resolve=True), overrides, resumed=resumed)


def _print_location(run: RunHandle, experiment_name: str) -> None:
    experiment_id = run.client.get_run(run.run_id).info.experiment_id
    print(
        f"\nMLflow run {run.run_id} (experiment {experiment_name!r}, id {experiment_id}) in {run.tracking_uri}\n"
        f"Open it:  mlflow ui --backend-store-uri {run.tracking_uri}\n"
        f"then http://127.0.0.1:5000/#/experiments/{experiment_id}/runs/{run.run_id}"
    )
