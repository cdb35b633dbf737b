"""The work of `heatlens-explain` (heatlens.cli.explain): explain a logged run again."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from heatlens.cli.ddp import ddp_job
from heatlens.cli.checks import build_trainer, explanations
from heatlens.cli.console import print_headline, quiet_console
from heatlens.data import build_datamodule
from heatlens.errors import HeatlensError
from heatlens.models import normalization_for
from heatlens.models.checkpoint_read import load_module
from heatlens.tracking import RunHandle, create_logger, git_commit, log_run_config
from heatlens.tracking.outcome import recorded_outcome
from heatlens.tracking.query import summary_figure_for_run
from heatlens.tracking.setup import check_logger_config, resolve_tracking_uri

CONFIG_ARTIFACT = "config/config.yaml"
INDEX_ARTIFACT = "checkpoints/index.json"


class ReexplainError(HeatlensError):
    """The run to re-explain cannot be used: the message names the run, artifact or key at fault."""


def task(cfg: DictConfig) -> None:
    with ddp_job():
        reexplain(cfg)


def reexplain(cfg: DictConfig) -> str | None:
    """Explain run `cfg.run_id` again; returns the child run's id (None on ranks > 0)."""
    quiet_console()
    check_logger_config(cfg.logger)
    tracking_uri = resolve_tracking_uri(cfg.logger.get("tracking_uri"))
    # Built first: a bad explain.* option fails before anything is downloaded or a child run created.
    callbacks = [explanations(cfg.explain)]
    parent = RunHandle(tracking_uri, str(cfg.run_id))
    parent_run = _get_run(parent)
    tags = parent_run.data.tags
    with tempfile.TemporaryDirectory(prefix="heatlens-explain-") as tmp:
        run_cfg = OmegaConf.load(_download(parent, CONFIG_ARTIFACT, tmp))
        checkpoint, ckpt_path = _checkpoint(cfg, parent, tags, tmp)
        L.seed_everything(run_cfg.seed, workers=True, verbose=False)
        data_cfg = OmegaConf.merge(run_cfg.data, cfg.data)
        mean, std = normalization_for(run_cfg.backbone, data_cfg.channels)
        datamodule = build_datamodule(data_cfg, mean=mean, std=std, seed=run_cfg.seed)
        datamodule.prepare_data()
        datamodule.setup("test")
        module = load_module(ckpt_path, "checkpoint")
        if module.task != datamodule.task:
            raise ReexplainError(f"checkpoint {checkpoint} of run {cfg.run_id} is {module.task}, the rebuilt data "
                                 f"data.task={datamodule.task}: drop the data.task override")
        if list(module.class_names) != list(datamodule.class_names):
            raise ReexplainError(f"checkpoint {checkpoint} of run {cfg.run_id} has classes {module.class_names}, "
                                 f"the rebuilt test set {datamodule.class_names}: check the data.* overrides")
        trainer = build_trainer(cfg, callbacks)
        experiment = parent.client.get_experiment(parent_run.info.experiment_id).name
        child_tags = _child_tags(cfg, tags, checkpoint, datamodule.test_hash)
        logger = create_logger({"tracking_uri": tracking_uri, "experiment_name": experiment,
                                "figures": cfg.logger.get("figures", True)},
                               f"{parent_run.info.run_name}-explain", child_tags)
        trainer.loggers = [logger]
        child = RunHandle.for_logger(logger) if rank_zero_only.rank == 0 else None
        with recorded_outcome(child, trainer):
            if child is not None:
                _log_config(cfg, child)
            trainer.test(module, datamodule=datamodule, verbose=False)
            if child is not None:
                child.log_figure(lambda: summary_figure_for_run(child.client, child.run_id), "summary.png")
    if child is None:
        return None
    print_headline(child.client.get_run(child.run_id).data.metrics)
    print(f"\nExplained run {cfg.run_id} ({checkpoint}) into child run {child.run_id} in {tracking_uri}")
    return child.run_id


def _checkpoint(cfg: DictConfig, parent: RunHandle, tags: dict[str, str], tmp: str) -> tuple[str, str]:
    """(name, local file) of the checkpoint to explain: `checkpoint=` (an artifact path of the run or a
    local file), else the run's uploaded selected checkpoint, else its local file named in
    `checkpoints/index.json` (runs logged with `logger.upload_checkpoints=none`)."""
    if cfg.checkpoint:
        if Path(cfg.checkpoint).is_file():
            return str(cfg.checkpoint), str(cfg.checkpoint)
        return str(cfg.checkpoint), _download(parent, str(cfg.checkpoint), tmp)
    if tags.get("selected_checkpoint"):
        return tags["selected_checkpoint"], _download(parent, tags["selected_checkpoint"], tmp)
    index = json.loads(Path(_download(parent, INDEX_ARTIFACT, tmp)).read_text())
    local = index["checkpoints"][index["selected"]]["local_path"]
    if not Path(local).is_file():
        raise ReexplainError(f"run_id={cfg.run_id} uploaded no checkpoint (logger.upload_checkpoints="
                             f"{index.get('upload')}) and its selected one, {local}, is not on this machine: "
                             f"give checkpoint=<path of a .ckpt file>")
    return local, local


def _get_run(handle: RunHandle) -> Any:
    # Only heatlens.tracking may import mlflow: any failure of the lookup means the id is unusable here.
    try:
        return handle.client.get_run(handle.run_id)
    except Exception as error:  # noqa: BLE001
        raise ReexplainError(f"run_id={handle.run_id} is not a run of {handle.tracking_uri}: {error}") from None


def _download(handle: RunHandle, artifact: str, destination: str) -> str:
    try:
        return handle.client.download_artifacts(handle.run_id, artifact, destination)
    except Exception as error:  # noqa: BLE001
        raise ReexplainError(f"run {handle.run_id} has no artifact {artifact!r}: {error}") from None


def _child_tags(cfg: DictConfig, parent_tags: dict[str, str], checkpoint: str, test_hash: str | None) -> dict[str, str]:
    inherited = {key: parent_tags[key] for key in ("backbone", "dataset") if key in parent_tags}
    # The hash of the test set rebuilt here: `+data.*` overrides may have changed it.
    return {
        **inherited,
        "test_hash": str(test_hash),
        "mlflow.parentRunId": str(cfg.run_id),
        "explained_checkpoint": checkpoint,
        "git_commit": git_commit(),
        "sweep_id": "none",
    }


def _log_config(cfg: DictConfig, child: RunHandle) -> None:
    overrides = OmegaConf.to_yaml(OmegaConf.create(list(HydraConfig.get().overrides.task)))
    config = OmegaConf.to_container(cfg, resolve=True)
    log_run_config(child, config, OmegaConf.to_yaml(cfg, resolve=True), overrides, resumed=False)
    child.set_tags({"output_dir": str(Path(HydraConfig.get().runtime.output_dir))})

