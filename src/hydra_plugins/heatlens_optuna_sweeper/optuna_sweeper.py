"""The Sweeper Hydra instantiates; the work (and the Optuna/MLflow imports) live in `_impl`, loaded
only when a sweep starts, so that plain `python train.py` runs do not pay for them."""

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.heatlens_optuna_sweeper import config as _config  # noqa: F401  (registers the configs)


class HeatlensOptunaSweeper(Sweeper):
    def __init__(
        self,
        direction: str,
        study_name: str,
        storage: Optional[str],
        n_trials: int,
        n_jobs: int,
        sampler: Any,
        pruner: Any,
        heartbeat_interval: float,
        params: Optional[DictConfig],
    ) -> None:
        from hydra_plugins.heatlens_optuna_sweeper._impl import OptunaSweep

        self.sweeper = OptunaSweep(
            direction=direction,
            study_name=study_name,
            storage=storage,
            n_trials=n_trials,
            n_jobs=n_jobs,
            sampler=sampler,
            pruner=pruner,
            heartbeat_interval=heartbeat_interval,
            params=params,
        )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> None:
        self.sweeper.sweep(arguments)
