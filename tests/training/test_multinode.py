"""Multi-node DDP on loopback: two "nodes" (processes on this host, gloo) started by `torchrun` or with
the variables `srun` sets. One MLflow run per job, one set of checkpoints (rank 0's, tested by every
rank), and explanations equal to a single process explaining the same checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from mlflow.tracking import MlflowClient
from multinode_helpers import (
    assert_same_explanations,
    clean_env,
    free_port,
    is_launch_var,
    reexplain_single_process,
    run_nodes,
    slurm_job_id_with_free_port,
    srun_env,
)

from heatlens.callbacks.checkpoints import LAST
from heatlens.cli import ddp
from heatlens.cli.checks import TrainConfigError
from heatlens.cli.ddp import HydraJobDDPStrategy, HydraJobLauncher, ddp_job, ddp_strategy
from heatlens.cli.train import _selected_checkpoint

# 210 phantom images -> 21 test images: DistributedSampler repeats one on the second rank.
EXPLAIN = ["explain.max_images=null", "explain.aopc.region_size=8", "explain.aopc.correct_only=false",
           "logger.figures=false"]
TRAIN = ["train.py", "data.num_images=210", "data.image_size=32", "data.source_size=32", "data.augment=null",
         "backbone.width=4", "trainer.max_epochs=1", "callbacks=none", "trainer.num_sanity_val_steps=0",
         "trainer=ddp_cpu", "trainer.devices=1", "trainer.num_nodes=2", *EXPLAIN]
# About 90 s per test on a quiet 2-core machine; the limit is for a loaded one (it catches hangs).
NODES_TIMEOUT_S = 600
CHECKPOINTS = {"best-recall-COVID.ckpt", "best-recall-Lung_Opacity.ckpt", "best-recall-Normal.ckpt",
               "best-recall-Viral_Pneumonia.ckpt", "best-recall_disease_mean.ckpt", "best-recall_macro.ckpt",
               "last.ckpt"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One MLflow store and data cache for the module's jobs (the phantom is generated once). The store
    is left for the two nodes to create together: heatlens.tracking serialises that."""
    return clean_env(tmp_path_factory.mktemp("multinode"))


def _check_job(env: dict[str, str], experiment: str, job_dir: Path, outputs: list[str], tmp: Path) -> None:
    """One FINISHED run, rank 0's folder holds the only checkpoints, and the run's explanations equal
    a single process's on its selected checkpoint."""
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]  # the second node really was rank 1 of 2
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs(client.get_experiment_by_name(experiment).experiment_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["output_dir"] == str(job_dir / "rank0")
    # Rank 1 started in a folder of its own (as nodes starting in different seconds would): every
    # rank still wrote to, and tested from, rank 0's checkpoint folder.
    assert {p.name for p in (job_dir / "rank0" / "checkpoints").iterdir()} == CHECKPOINTS
    assert not (job_dir / "rank1" / "checkpoints").exists()
    assert (job_dir / "rank1" / ".hydra" / "config.yaml").is_file()
    test_ids = client.download_artifacts(run.info.run_id, "reports/test_predictions.npz", str(tmp / "test"))
    with np.load(test_ids) as arrays:
        assert len(arrays["ids"]) == len(set(arrays["ids"].tolist())) == 21

    single = reexplain_single_process(run.info.run_id, EXPLAIN, env, tmp / "single")
    assert_same_explanations(client, run.info.run_id, single, tmp / "artifacts")


@pytest.mark.slow
@pytest.mark.timeout(NODES_TIMEOUT_S + 300)
def test_torchrun_on_two_nodes_equals_one_process(stores: dict[str, str], tmp_path: Path) -> None:
    port, job = free_port(), "torchrun-job"
    job_dir = tmp_path / "outputs" / job
    commands = [[sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                 f"--node-rank={node}", "--master-addr=127.0.0.1", f"--master-port={port}", f"--rdzv-id={job}",
                 *TRAIN, "logger.experiment_name=torchrun",
                 f"hydra.run.dir={tmp_path}/outputs/${{oc.env:TORCHELASTIC_RUN_ID}}/rank${{oc.env:RANK}}"]
                for node in (0, 1)]
    outputs = run_nodes(commands, [stores, stores], tmp_path / "logs", NODES_TIMEOUT_S)
    _check_job(stores, "torchrun", job_dir, outputs, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(NODES_TIMEOUT_S + 300)
def test_srun_on_two_nodes_equals_one_process(stores: dict[str, str], tmp_path: Path) -> None:
    # No MASTER_ADDR / MASTER_PORT: Lightning's SLURMEnvironment takes them from the node list and job id.
    job_id = slurm_job_id_with_free_port()
    job_dir = tmp_path / "outputs" / f"slurm-{job_id}"
    command = [sys.executable, *TRAIN, "logger.experiment_name=srun",
               f"hydra.run.dir={tmp_path}/outputs/slurm-${{oc.env:SLURM_JOB_ID}}/rank${{oc.env:SLURM_PROCID}}"]
    envs = [srun_env(stores, job_id, node) for node in (0, 1)]
    outputs = run_nodes([command, command], envs, tmp_path / "logs", NODES_TIMEOUT_S)
    _check_job(stores, "srun", job_dir, outputs, tmp_path)


def _no_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)  # a Trainer sets it process-wide
    for name in filter(is_launch_var, list(os.environ)):
        monkeypatch.delenv(name)


TORCHRUN_NODE_1 = {"RANK": "1", "LOCAL_RANK": "0", "GROUP_RANK": "1", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "1",
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "TORCHELASTIC_RUN_ID": "job"}


@pytest.mark.parametrize(("launcher", "environment"), [("torchrun", TorchElasticEnvironment),
                                                       ("srun", SLURMEnvironment)])
def test_external_launchers_set_the_ranks_and_nothing_is_launched(
        launcher: str, environment: type, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_launcher(monkeypatch)
    env = TORCHRUN_NODE_1 if launcher == "torchrun" else srun_env({}, "71234", node=1)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    trainer = L.Trainer(accelerator="cpu", devices=1, num_nodes=2, strategy=ddp_strategy("ddp"), logger=False)
    assert isinstance(trainer.strategy, HydraJobDDPStrategy)
    assert isinstance(trainer.strategy.cluster_environment, environment)
    monkeypatch.setattr(ddp, "_launched", [])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # else `launch` sets the thread count of this process
    # The real launch path: the external launcher started every rank, so nothing is started (or reaped).
    assert trainer.strategy.launcher.launch(lambda: "ran") == "ran"
    assert trainer.strategy.launcher.procs == [] and ddp._launched == []
    assert (trainer.global_rank, trainer.node_rank, trainer.local_rank, trainer.world_size) == (1, 1, 0, 2)
    assert rank_zero_only.rank == 1  # no MLflow run on this rank
    if launcher == "srun":
        assert trainer.strategy.cluster_environment.main_port == 15000 + 1234  # from the job id


def test_without_a_launcher_our_launcher_starts_the_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_launcher(monkeypatch)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy=ddp_strategy("ddp"), logger=False)
    assert isinstance(trainer.strategy.cluster_environment, LightningEnvironment)
    assert isinstance(trainer.strategy.launcher, HydraJobLauncher)


def test_a_job_reaps_the_ranks_it_launched_on_any_node(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lightning's own launcher on node 1: its first process is a rank > 0 that starts the node's others.
    monkeypatch.setenv("NODE_RANK", "1")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    monkeypatch.setattr(ddp, "_launched", [child])
    try:
        with ddp_job(child_wait_s=30):
            pass
        assert child.returncode == 0 and ddp._launched == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _job(tmp_path: Path, *, best: bool, last: bool) -> SimpleNamespace:
    tmp_path.mkdir(exist_ok=True)
    checkpoints = {"val/recall_macro": ModelCheckpoint(dirpath=tmp_path), LAST: ModelCheckpoint(dirpath=tmp_path)}
    for (name, callback), exists in zip(checkpoints.items(), (best, last)):
        callback.best_model_path = str(tmp_path / f"{name.replace('/', '-')}.ckpt")
        if exists:
            Path(callback.best_model_path).touch()
    return SimpleNamespace(checkpoints=checkpoints, trainer=L.Trainer(accelerator="cpu", logger=False))


def test_the_tested_checkpoint_is_one_every_rank_can_read(tmp_path: Path) -> None:
    monitor, path = _selected_checkpoint(_job(tmp_path, best=True, last=True), "val/recall_macro", None)
    assert (monitor, Path(path).name) == ("val/recall_macro", "val-recall_macro.ckpt")
    monitor, path = _selected_checkpoint(_job(tmp_path / "b", best=False, last=True), "val/recall_macro", None)
    assert (monitor, Path(path).name) == (LAST, "last.ckpt")
    with pytest.raises(TrainConfigError, match=r"last.ckpt \(written by rank 0\) is not readable on every rank"):
        _selected_checkpoint(_job(tmp_path / "c", best=False, last=False), "val/recall_macro", None)
