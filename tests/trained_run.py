"""The session's shared trained run (fixture `trained_run` in tests/conftest.py): one `python train.py
explain=full` on phantom data, trained once per test session, even across pytest-xdist workers, in a
fixed folder under a file lock, with its own MLflow store and phantom cache. Tests only read it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock
from in_process import run_main
from mlflow.tracking import MlflowClient
from stores import sqlite_store

EXPERIMENT = "trained-run"
# 510 phantom images -> a test split of 51 (odd: DistributedSampler repeats one sample on 2 ranks). Fewer
# images train a model too weak for the AOPC margins tested on it (330: MoRF - random 0.04-0.11 on some seeds).
DATA = ["data.num_images=510", "data.image_size=32", "data.source_size=32", "data.augment=null"]
OVERRIDES = [*DATA, "trainer.max_epochs=8", "optimizer.lr=3e-3", "callbacks=none", "trainer.num_sanity_val_steps=0",
             "explain=full", "explain.max_images=null", "explain.aopc.perturbation=mean",
             "explain.callbacks.sanity.max_layers=3", "explain.callbacks.attributions.num_images=2",
             f"logger.experiment_name={EXPERIMENT}"]


@dataclass
class TrainedRun:
    """A finished MLflow run: `client` on its own store (`env` points a subprocess at that store and the
    phantom cache the run's data came from), `output_dir` the Hydra job folder (checkpoints/ ...)."""

    run_id: str
    tracking_uri: str
    cache: Path
    output_dir: Path

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(self.tracking_uri)

    @property
    def data(self):
        return self.client.get_run(self.run_id).data

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "HEATLENS_CACHE": str(self.cache)}

    def artifacts(self, folder: str) -> set[str]:
        """Paths of every artifact under `folder`, recursively."""
        found = set()
        for entry in self.client.list_artifacts(self.run_id, folder):
            found |= self.artifacts(entry.path) if entry.is_dir else {entry.path}
        return found

    def npz(self, path: str, into: Path) -> dict[str, np.ndarray]:
        """The arrays of an .npz artifact, downloaded into `into`."""
        local = self.client.download_artifacts(self.run_id, path, str(into))
        with np.load(local) as arrays:
            return {key: arrays[key] for key in arrays.files}


def train_once(root: Path, cache: Path) -> TrainedRun:
    """Train the shared run in `root` (data from the phantom cache `cache`) unless an earlier process did;
    the lock makes the others wait."""
    root.mkdir(parents=True, exist_ok=True)
    done = root / "trained_run.json"
    with FileLock(str(root / "trained_run.lock")):
        if not done.is_file():
            run = TrainedRun("", sqlite_store(root), cache, root / "run")
            result = run_main(_train_main(), *OVERRIDES, f"hydra.run.dir={run.output_dir}",
                              env={**run.env, "OMP_NUM_THREADS": "1"})
            assert result.returncode == 0, f"the shared trained run failed:\n{(result.stdout + result.stderr)[-4000:]}"
            client = MlflowClient(run.tracking_uri)
            (found,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
            assert found.info.status == "FINISHED"
            run.run_id = found.info.run_id
            done.write_text(json.dumps({"run_id": run.run_id, "tracking_uri": run.tracking_uri,
                                        "cache": str(run.cache), "output_dir": str(run.output_dir)}))
    saved = json.loads(done.read_text())
    return TrainedRun(saved["run_id"], saved["tracking_uri"], Path(saved["cache"]), Path(saved["output_dir"]))


def _train_main():
    from heatlens.cli.train import main  # imported when a test needs it: collection stays light

    return main


def session_folder(basetemp: Path, xdist_worker: str | None) -> Path:
    """One folder for the whole session: under xdist the parent of the workers' basetemps (the session's
    basetemp), else this process's basetemp (its parent would outlive the session)."""
    return basetemp if xdist_worker is None else basetemp.parent

