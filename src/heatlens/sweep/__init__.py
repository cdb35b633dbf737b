"""Optuna sweeps shared by many workers (search space, storage, budget, liveness, plots, job side), for the
Hydra plugin hydra_plugins.heatlens_optuna_sweeper. May import optuna, Hydra, matplotlib; no MLflow, no other heatlens package.

Members are imported on first use (heatlens.lazy): importing the package costs nothing.
"""

from heatlens.lazy import lazy_members
from heatlens.sweep.errors import SweepConfigError as SweepConfigError

_MEMBERS = {
    "Heartbeat": "study",
    "SearchSpace": "space",
    "SharedStudy": "study",
    "StudyStorage": "storage",
    "StudySummary": "study",
    "TrialRef": "job",
    "load_trial": "job",
    "open_study": "study",
    "parse_search_space": "space",
    "resolve_storage": "storage",
    "summarize": "study",
    "sweep_trial": "job",
    "trial_overrides": "space",
}

__all__ = sorted([*_MEMBERS, "SweepConfigError"])
__getattr__ = lazy_members(__name__, _MEMBERS)
