"""`python train.py [overrides]` / `heatlens-train`: check the config, train, test and explain the selected
checkpoint, in one MLflow run (the work is in heatlens.cli.training).

Light on purpose: `--help`, `--cfg job` and a config error import no MLflow, Optuna, matplotlib, pandas or
torchvision (tests/test_startup.py); the config is checked before the heavy modules are imported.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import hydra
from omegaconf import DictConfig

from heatlens.cli.exits import run_task
from heatlens.paths import CONFIG_DIR


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    """Hydra task: returns the best validation value of `selection_metric` (for sweepers)."""
    return run_task("train", _task, cfg)


def _task(cfg: DictConfig) -> float:
    from heatlens.cli.checks import check_config

    check_config(cfg)  # before Lightning and MLflow are imported: a typo costs about one `import torch`
    from heatlens.cli.training import task

    return task(cfg)


def __getattr__(name: str) -> Any:
    """The work's names (`train`, `predictions`...) where they used to be, loaded on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(import_module("heatlens.cli.training"), name)
