"""The work of `python train.py [overrides]` (heatlens.cli.train): check the config, train, test and explain the
selected checkpoint, in one MLflow run.

The run stays RUNNING until test metrics, reports and explanations are all logged: FINISHED only
then, KILLED on Ctrl-C, FAILED (tag `error`, `reports/error.txt`) on any error.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from heatlens.callbacks.checkpoints import LAST, RunInCheckpoint, checkpoint_epoch, checkpoint_files
from heatlens.callbacks.distributed import gather_by_index
from heatlens.cli.checks import TrainConfigError, TrainJob, check_job
from heatlens.cli.console import print_headline, quiet_console
from heatlens.cli.ddp import ddp_job
from heatlens.clinical import clinical_settings
from heatlens.models import HeatlensModule, HeatlensNet, build_model, gradcam_map_size, model_facts
from heatlens.paths import home_dir
from heatlens.tracking import (
    RunHandle,
    create_logger,
    git_commit,
    log_checkpoints,
    log_run_config,
    log_selected_model,
    log_test_reports,
    run_location,
)
from heatlens.tracking.describe import log_datasets
from heatlens.tracking.query import summary_figure_for_run
from heatlens.tracking.outcome import recorded_outcome

log = logging.getLogger(__name__)

# Grad-CAM maps smaller than this (per side) are too coarse to say where a model looks.
MIN_MAP_SIDE = 7


def task(cfg: DictConfig) -> float:
    """One job of `python train.py`: its own DDP process group (each job of a sweep), cleaned up at its end."""
    with ddp_job():
        return train(cfg)


def train(cfg: DictConfig) -> float:
    """Run one training job as configured; once its MLflow run exists every outcome is recorded in it."""
    quiet_console()
    job = check_job(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    logger = create_logger(cfg.logger, _run_name(cfg), _tags(cfg), run_id=job.resume_run_id,
                           job_number=_job_number())
    job.trainer.loggers = [logger]
    job.trainer.callbacks.append(RunInCheckpoint())
    run = RunHandle.for_logger(logger) if rank_zero_only.rank == 0 else None
    with recorded_outcome(run, job.trainer):
        if run is not None:
            _log_start(cfg, job.config, run, resumed=job.resume_run_id is not None)
        best = _fit_test_explain(cfg, job, run)
        if run is not None:
            run.log_figure(lambda: summary_figure_for_run(run.client, run.run_id), "summary.png")
    if run is not None:
        print_headline(run.client.get_run(run.run_id).data.metrics)
        print(run_location(run))
    return best


def _fit_test_explain(cfg: DictConfig, job: TrainJob, run: RunHandle | None) -> float:
    datamodule, trainer = job.datamodule, job.trainer
    datamodule.prepare_data()
    datamodule.setup("fit")
    # Seeded again here: the weights must not depend on whether preparing the data drew random numbers.
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    net = build_model(cfg.backbone, cfg.head, datamodule.num_classes, datamodule.channels)
    weights = datamodule.class_weights
    pos_weight = datamodule.pos_weight() if datamodule.task == "multilabel" else None
    module = HeatlensModule(
        cfg=job.config,
        class_names=datamodule.class_names,
        in_chans=datamodule.channels,
        healthy_class=datamodule.healthy_class,
        class_weights=None if weights is None else weights.tolist(),
        net=net,
        pos_weight=None if pos_weight is None else pos_weight.tolist(),
    )
    _warn_small_gradcam_map(net, datamodule.image_size, datamodule.channels, run)
    if run is not None:
        run.log_metrics(model_facts(net))
        log_datasets(run, datamodule.split_ids, cfg.data.get("root"),
                     {key: cfg.data.get(key) for key in ("num_images", "generator_seed", "source_size")})
        if datamodule.skipped:
            run.log_dict(datamodule.skipped, "reports/skipped_files.json")
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)

    tested, best_path = _selected_checkpoint(job, cfg.selection_metric, run)
    trainer.test(module, datamodule=datamodule, ckpt_path=best_path, verbose=False)
    test = predictions(trainer, module, datamodule.test_dataloader(), best_path)
    val = predictions(trainer, module, datamodule.val_dataloader(), best_path)
    if run is not None:
        clinical = log_test_reports(
            run, datamodule.class_names, datamodule.healthy_class, test=test, val=val,
            test_ids=datamodule.test_dataset.ids, test_hash=datamodule.test_hash,
            selected_epoch=checkpoint_epoch(best_path), clinical=clinical_settings(cfg.get("clinical")),
            seed=cfg.seed,
        )
        scores = {m: None if cb.best_model_score is None else float(cb.best_model_score)
                  for m, cb in job.checkpoints.items()}
        log_checkpoints(run, checkpoint_files(job.checkpoints), scores, tested, upload=cfg.logger.upload_checkpoints)
        log_selected_model(run, best_path, image_size=datamodule.image_size, channels=datamodule.channels,
                           mean=datamodule.mean, std=datamodule.std, resize=datamodule.settings.resize,
                           registered_model_name=cfg.logger.registered_model_name,
                           temperature=clinical.temperature, thresholds=clinical.thresholds)
    selected = job.checkpoints[cfg.selection_metric]
    return float("nan") if selected.best_model_score is None else float(selected.best_model_score)


def _selected_checkpoint(job: TrainJob, selection_metric: str, run: RunHandle | None) -> tuple[str, str]:
    """(monitor, path) of the checkpoint to test: the selection metric's best, else `last` (said once).

    Rank 0 wrote the checkpoints and decides; every rank tests its choice (DDP on several nodes: a
    node that cannot see the file must fail, not test another checkpoint).
    """
    monitor, path = selection_metric, job.checkpoints[selection_metric].best_model_path
    if not (path and Path(path).is_file()):
        monitor, path = LAST, job.checkpoints[LAST].best_model_path
    monitor, path = job.trainer.strategy.broadcast((monitor, path))
    if not job.trainer.strategy.reduce_boolean_decision(Path(path).is_file(), all=True):
        raise TrainConfigError(f"checkpoint {path} (written by rank 0) is not readable on every rank: put "
                               f"hydra.run.dir on a file system all nodes share")
    if monitor == LAST:
        message = f"selection_metric={selection_metric} has no checkpoint (it was never logged): testing last.ckpt"
        log.warning(message)
        if run is not None:
            run.set_tags({"selection_fallback": message})
    return monitor, path


def predictions(trainer: L.Trainer, module: HeatlensModule, loader: DataLoader,
                ckpt_path: str) -> dict[str, np.ndarray] | None:
    """Probabilities (and `tta_probs` with `clinical.tta`), labels and dataset index of every sample of
    `loader`, gathered on rank 0 (None on other ranks), one row per sample in index order."""
    batches = trainer.predict(module, dataloaders=loader, ckpt_path=ckpt_path, return_predictions=True) or []
    tta = (module.hparams.cfg.get("clinical") or {}).get("tta", "none") != "none"
    probs = ("probs", "tta_probs") if tta else ("probs",)
    parts = {key: np.concatenate([b[key].numpy() for b in batches]) if batches else np.empty(0)
             for key in (*probs, "labels", "index")}
    if not batches:
        parts |= {key: np.empty((0, len(module.class_names)), np.float32) for key in probs}
    return gather_by_index(parts.pop("index").astype(np.int64), parts)


def _warn_small_gradcam_map(net: HeatlensNet, image_size: int, channels: int, run: RunHandle | None) -> None:
    height, width = gradcam_map_size(net, image_size, channels)
    if min(height, width) >= MIN_MAP_SIDE:
        return
    message = (f"Grad-CAM maps of {net.name} at data.image_size={image_size} are {height}x{width}: too coarse to "
               f"localise; raise data.image_size (native size of this backbone: see conf/backbone)")
    log.warning(message)
    if run is not None:
        run.set_tags({"small_gradcam_map": f"{height}x{width}"})


def _dataset_name(cfg: DictConfig) -> str:
    return str(HydraConfig.get().runtime.choices.get("data") or cfg.data.get("name", "data"))


def _run_name(cfg: DictConfig) -> str:
    return f"{cfg.backbone.name}-{_dataset_name(cfg)}"


def _job_number() -> int | None:
    hydra_cfg = HydraConfig.get()
    return hydra_cfg.job.num if hydra_cfg.mode == RunMode.MULTIRUN else None


def _sweep_id() -> str:
    """The sweep folder (relative to the working home when inside it) shared by all jobs of a multirun."""
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return "none"
    sweep_dir, home = Path(hydra_cfg.sweep.dir).resolve(), home_dir().resolve()
    return str(sweep_dir.relative_to(home)) if sweep_dir.is_relative_to(home) else str(sweep_dir)


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
