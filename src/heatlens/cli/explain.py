"""`python -m heatlens.cli.explain run_id=<id> [explain.* trainer.* overrides]`: explain a logged run again.

Loads the run's checkpoint (the selected one unless `checkpoint=`) and logged config from MLflow,
rebuilds its test set, and runs the post-fit explanation callbacks through `trainer.test` into a
child run (tag `mlflow.parentRunId`). AOPC settings change without retraining, and the same
checkpoint explains with `trainer=cpu` and `trainer=ddp_cpu` for a parity check.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import hydra
from omegaconf import DictConfig

from heatlens.cli.exits import run_task
from heatlens.paths import CONFIG_DIR


@hydra.main(config_path=str(CONFIG_DIR), config_name="reexplain", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_task("explain", _task, cfg)


def _task(cfg: DictConfig) -> None:
    from heatlens.cli.reexplain import task  # Lightning and MLflow: only once Hydra has parsed the command line

    task(cfg)


def __getattr__(name: str) -> Any:
    """The work's names (`reexplain`, `ReexplainError`...) where they used to be, loaded on first use."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(import_module("heatlens.cli.reexplain"), name)


if __name__ == "__main__":
    main()
