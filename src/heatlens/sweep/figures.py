"""Optuna's own matplotlib plots of a study, as Figures (the caller logs and closes them)."""

from __future__ import annotations

import warnings

import optuna
from matplotlib.figure import Figure
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState

# Parameter importance needs at least two finished trials to compare.
MIN_TRIALS_FOR_IMPORTANCE = 2


def _complete(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def history_figure(study: optuna.Study) -> Figure | None:
    """Objective value per trial and the best so far; None before the first completed trial."""
    if _complete(study) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = optuna.visualization.matplotlib.plot_optimization_history(study)
    return axes.figure


def importance_figure(study: optuna.Study, seed: int = 0) -> Figure | None:
    """fANOVA importance of each searched parameter (seeded forest: same study, same figure);
    None with fewer than two completed trials or when no parameter varied between them."""
    if _complete(study) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            axes = optuna.visualization.matplotlib.plot_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=seed)
            )
        except (ValueError, RuntimeError):  # e.g. every completed trial drew the same values
            return None
    return axes.figure
