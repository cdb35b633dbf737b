"""`python app.py -m hydra.sweeper.storage=... ledger=...`: objective -(x-1)^2 - y + epoch/10, reported
to the trial every "epoch" as heatlens' Lightning callback does (same `sweep_trial`, no Lightning to
import, so jobs start fast)."""

import os
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig
from optuna import TrialPruned

from heatlens.sweep import sweep_trial

WAIT_LIMIT_S = 120


def wait_for_workers(ledger: Path, workers: int) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while len({line.split()[0] for line in ledger.read_text().splitlines()}) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {workers} workers started within {WAIT_LIMIT_S} s")
        time.sleep(0.1)


@hydra.main(config_path="conf", config_name="app", version_base="1.3")
def main(cfg: DictConfig) -> float:
    trial = sweep_trial(cfg)
    ledger = Path(cfg.ledger)
    with ledger.open("a") as out:
        out.write(f"{os.getpid()} {trial.number if trial else -1}\n")
    if cfg.fail_on_y is not None and cfg.y == cfg.fail_on_y:
        raise ValueError(f"y={cfg.y} fails on purpose")
    value = float("nan")
    for epoch in range(cfg.epochs):
        if epoch == 0 and cfg.wait_for_workers:
            wait_for_workers(ledger, cfg.wait_for_workers)
        time.sleep(cfg.epoch_seconds)
        value = -((cfg.x - 1.0) ** 2) - cfg.y + epoch / 10
        if trial is not None:
            trial.report(value, step=epoch)
            if trial.should_prune():
                raise TrialPruned(f"pruned at epoch {epoch}")
    return value


if __name__ == "__main__":
    main()
