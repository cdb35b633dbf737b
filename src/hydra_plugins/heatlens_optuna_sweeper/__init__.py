"""heatlens' Hydra sweeper on current Optuna: `hydra/sweeper=heatlens_optuna` (conf/hparams_search/optuna.yaml)."""
