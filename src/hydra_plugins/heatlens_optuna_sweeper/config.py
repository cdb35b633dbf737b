"""`hydra/sweeper=heatlens_optuna`: the sweeper's keys, under `hydra.sweeper`."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class HeatlensOptunaSweeperConf:
    _target_: str = "hydra_plugins.heatlens_optuna_sweeper.optuna_sweeper.HeatlensOptunaSweeper"
    # The sampler and pruner reach the sweeper as configs: it builds a sampler per trial.
    _recursive_: bool = False
    # maximize | minimize the value the task returns.
    direction: str = "maximize"
    # Same name and storage: the same study (a re-run continues it; several workers share it).
    study_name: str = "heatlens"
    # null: optuna.journal beside the MLflow store; a path: a journal file; or a database URL.
    storage: Optional[str] = None
    # Trials the study holds when the sweep ends, counted over every run and worker of the study.
    n_trials: int = 20
    # Trials asked at once and handed to the launcher together (parallel with joblib or SLURM).
    n_jobs: int = 1
    # An Optuna sampler; its `seed` is offset by the trial number, so workers never draw alike.
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    # median | hyperband | halving (heatlens.sweep.pruners), a config with `_target_: optuna.pruners...`, or
    # null: no pruning.
    pruner: Any = "median"
    # Seconds between liveness marks on running trials; one silent for 3 intervals is run again.
    heartbeat_interval: float = 60.0
    # Search space: key -> Hydra override value (choice, interval, tag(log, interval), range).
    params: Optional[Dict[str, str]] = None


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="heatlens_optuna", node=HeatlensOptunaSweeperConf, provider="heatlens")
