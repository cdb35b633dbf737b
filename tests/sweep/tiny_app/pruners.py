"""A pruner that prunes odd-numbered trials once they reported two epochs: deterministic, so the test
knows which trials must end PRUNED and after how many epochs."""

import optuna


class OddTrialsAfterTwoEpochs(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number % 2 == 1 and len(trial.intermediate_values) >= 2
