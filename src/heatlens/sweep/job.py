"""The job side of a trial: the sweeper names it in the job's config (`trial.number`, `trial.study`,
`trial.storage`); the job reopens it from the storage to report and to ask the pruner.

This works the same whichever Hydra launcher ran the job (in process, joblib worker, SLURM node):
only the storage is shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from heatlens.sweep.pruners import build_pruner
from heatlens.sweep.space import override_value
from heatlens.sweep.storage import StudyStorage


@dataclass(frozen=True)
class TrialRef:
    number: int
    study: str
    storage: str

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> TrialRef | None:
        """The `trial` node the sweeper adds to each job's config; None outside a sweep."""
        if not node:
            return None
        return cls(number=int(node["number"]), study=str(node["study"]), storage=str(node["storage"]))

    def overrides(self) -> list[str]:
        """`++` adds the keys whether or not the config declares a `trial` node."""
        return [f"++trial.{key}={override_value(value)}" for key, value in vars(self).items()]


def load_trial(ref: TrialRef, pruner: optuna.pruners.BasePruner | None) -> optuna.trial.Trial:
    """The running trial `ref`, judged by `pruner` (None: reports are recorded, nothing is pruned)."""
    storage = StudyStorage(ref.storage).open()
    study = optuna.load_study(
        study_name=ref.study,
        storage=storage,
        pruner=pruner or optuna.pruners.NopPruner(),
        # The job never samples; a seeded sampler keeps it free of unseeded randomness.
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(ref.study), ref.number)
    return optuna.trial.Trial(study, trial_id)


def sweep_trial(cfg: Mapping[str, Any]) -> optuna.trial.Trial | None:
    """The trial this job runs (`cfg.trial`, judged by `hydra.sweeper.pruner`), None outside a sweep."""
    ref = TrialRef.from_config(cfg.get("trial"))
    if ref is None:
        return None
    setting = HydraConfig.get().sweeper.get("pruner") if HydraConfig.initialized() else None
    if isinstance(setting, DictConfig):
        setting = OmegaConf.to_container(setting, resolve=True)
    return load_trial(ref, build_pruner(setting))
