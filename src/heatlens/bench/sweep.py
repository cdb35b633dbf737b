"""Pruning benchmark: the same Optuna sweep of `heatlens-train` on phantom data, run twice side by side.

sweep_pruning  epochs trained without pruning / epochs trained with the `halving` pruner (successive
               halving: Hyperband's single bracket, the one that pays off at 12 trials), same 12
               trials, same sampler seed, same search space (conf/hparams_search/optuna.yaml). The
               result line gives both best validation values (`selection_metric`) and the noise of
               that value: its standard error on the validation split, sqrt(p(1-p)/n_val), for p the
               unpruned best. "within noise" means the pruned best is at most two standard errors
               below the unpruned one.

Each sweep is one `heatlens-train -m` process with its own study (journal file) and MLflow store in
a temporary folder; epochs are counted from the study (one report per validation epoch).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from hydra import compose, initialize_config_dir

from heatlens.bench.common import BenchResult
from heatlens.data import build_datamodule
from heatlens.paths import CONFIG_DIR
from heatlens.sweep import StudySummary, resolve_storage, summarize

STUDY = "bench-pruning"
# Phantom images large enough for a validation split of 60 (noise ~0.06 on a recall near 0.7).
SETTINGS = ["data.num_images=600", "data.image_size=48", "backbone.width=8", "explain=none"]


def _sweep(folder: Path, pruner: list[str], n_trials: int, epochs: int) -> tuple[StudySummary, float]:
    """One sweep in `folder`: its study summary and wall time."""
    command = [
        str(Path(sys.executable).with_name("heatlens-train")), "-m", "hparams_search=optuna",
        f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.study_name={STUDY}",
        f"hydra.sweeper.storage={folder / 'optuna.journal'}", f"hydra.sweep.dir={folder / 'multirun'}",
        f"trainer.max_epochs={epochs}", *SETTINGS, *pruner,
    ]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlruns' / 'mlflow.db'}"}
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"sweep failed ({' '.join(command)}):\n{(result.stdout + result.stderr)[-3000:]}")
    storage = resolve_storage(str(folder / "optuna.journal"), folder).open()
    return summarize(optuna.load_study(study_name=STUDY, storage=storage)), seconds


def _validation_size() -> int:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=SETTINGS)
    datamodule = build_datamodule(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return len(datamodule.val_dataset)


def _value(summary: StudySummary) -> float:
    return float("nan") if summary.best_value is None else summary.best_value


def run(quick: bool) -> list[BenchResult]:
    n_trials, epochs = (4, 3) if quick else (12, 9)
    with tempfile.TemporaryDirectory() as tmp:
        pruned_dir, full_dir = Path(tmp) / "pruned", Path(tmp) / "full"
        pruned_dir.mkdir()
        full_dir.mkdir()
        pruned, pruned_s = _sweep(pruned_dir, ["hydra.sweeper.pruner=halving"], n_trials, epochs)
        full, full_s = _sweep(full_dir, ["hydra.sweeper.pruner=null"], n_trials, epochs)
    n_val = _validation_size()
    best, pruned_best = _value(full), _value(pruned)
    noise = math.sqrt(best * (1 - best) / n_val)
    gap = best - pruned_best
    return [
        BenchResult(
            key="sweep_pruning",
            ratio=full.epochs_trained / max(pruned.epochs_trained, 1),
            ours=(f"halving: {pruned.epochs_trained} epochs ({pruned.n_pruned}/{n_trials} pruned), "
                  f"best {pruned_best:.3f}, {pruned_s:.0f} s"),
            reference=(f"no pruning: {full.epochs_trained} epochs, best {best:.3f}, {full_s:.0f} s; "
                       f"gap {gap:+.3f} vs noise {noise:.3f} (SE, n_val={n_val}): "
                       f"{'within' if gap <= 2 * noise else 'OUTSIDE'} 2 SE"),
            setting=f"{n_trials} trials x {epochs} epochs, simple_cnn width 8, phantom 600 px48, cpu",
            details={
                "epochs_pruned": pruned.epochs_trained, "epochs_unpruned": full.epochs_trained,
                "trials_pruned": pruned.n_pruned, "best_pruned": pruned_best, "best_unpruned": best,
                "noise_se": noise, "n_val": n_val, "seconds_pruned": pruned_s, "seconds_unpruned": full_s,
            },
        )
    ]
