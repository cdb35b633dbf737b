"""Optuna sweeps shared by many workers (search space, storage, budget, liveness, plots, job side), for the
Hydra plugin hydra_plugins.heatlens_optuna_sweeper. May import optuna, Hydra, matplotlib; no MLflow, no other heatlens package.
"""

from heatlens.sweep.errors import SweepConfigError
from heatlens.sweep.job import TrialRef, load_trial, sweep_trial
from heatlens.sweep.space import SearchSpace, parse_search_space, trial_overrides
from heatlens.sweep.storage import StudyStorage, resolve_storage
from heatlens.sweep.study import Heartbeat, SharedStudy, StudySummary, open_study, summarize

__all__ = [
    "Heartbeat",
    "SearchSpace",
    "SharedStudy",
    "StudyStorage",
    "StudySummary",
    "SweepConfigError",
    "TrialRef",
    "load_trial",
    "open_study",
    "parse_search_space",
    "resolve_storage",
    "summarize",
    "sweep_trial",
    "trial_overrides",
]
