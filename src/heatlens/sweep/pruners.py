"""`hydra.sweeper.pruner`: a preset name, an instantiable Optuna pruner config, or null (no pruning)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hydra
import optuna

from heatlens.sweep.errors import SweepConfigError

PRESETS: dict[str, dict[str, Any]] = {
    # Stop a trial below the median of earlier trials at the same epoch, once 4 trials finished,
    # never in a trial's first epoch.
    "median": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 4, "n_warmup_steps": 1},
    # Successive halving over brackets, from 1 epoch to a full trial (Optuna reads the full length
    # off the first finished trial), keeping a third at each rung. Made for many trials.
    "hyperband": {"_target_": "optuna.pruners.HyperbandPruner", "min_resource": 1, "max_resource": "auto",
                  "reduction_factor": 3},
    # One bracket of it (asynchronous successive halving): a trial is judged at steps 1, 3, 9, ...
    # (0-based epochs) and goes on only in the top third of its rung. The thriftiest; for small
    # budgets (bench sweep_pruning).
    "halving": {"_target_": "optuna.pruners.SuccessiveHalvingPruner", "min_resource": 1, "reduction_factor": 3},
}


def build_pruner(setting: str | Mapping[str, Any] | None) -> optuna.pruners.BasePruner | None:
    if setting is None:
        return None
    if isinstance(setting, str):
        if setting not in PRESETS:
            raise SweepConfigError(
                f"hydra.sweeper.pruner={setting}: use {' | '.join(PRESETS)} | null, or a config with _target_"
            )
        setting = PRESETS[setting]
    try:
        pruner = hydra.utils.instantiate(setting)
    except Exception as err:  # instantiate wraps import, type and value errors alike
        raise SweepConfigError(f"hydra.sweeper.pruner cannot be built from {dict(setting)}: {err}") from None
    if not isinstance(pruner, optuna.pruners.BasePruner):
        raise SweepConfigError(f"hydra.sweeper.pruner: {type(pruner).__name__} is not an Optuna pruner")
    return pruner
