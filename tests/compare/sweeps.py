"""Run `python train.py` (single or multirun, in this process) on tiny phantom data into a given MLflow store."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from in_process import Result, run_main
from omegaconf import DictConfig, open_dict

from heatlens.cli.train import main as train_main
from heatlens.paths import CONFIG_DIR

# Small enough for seconds per job on 2 CPU cores, large enough that every class reaches the test split.
TINY = ["data.num_images=96", "data.image_size=32", "trainer.max_epochs=1", "backbone.width=4", "explain.max_images=16",
        "logger.figures=false"]


def train(args: list[str], tracking_uri: str, out_dir: Path) -> Result:
    """`python train.py ARGS` in this process (tests/in_process.py) with outputs under out_dir."""
    dirs = [f"hydra.run.dir={out_dir / 'run'}", f"hydra.sweep.dir={out_dir / 'sweep'}"]
    return run_main(train_main, *args, *dirs, env={"MLFLOW_TRACKING_URI": tracking_uri})


def tail(result: Result, chars: int = 4000) -> str:
    return (result.stdout + result.stderr)[-chars:]


def compare_config(out_dir: Path, **overrides) -> DictConfig:
    """The composed `compare` config with `out_dir` set (its default needs a running Hydra app)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("compare", overrides=[f"{k}={v}" for k, v in overrides.items()])
    with open_dict(cfg):
        cfg.out_dir = str(out_dir)  # ${hydra:runtime.output_dir} exists only inside a Hydra run
    return cfg
