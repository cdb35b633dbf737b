"""DDP inside a Hydra multirun: each job runs its own process group with its own device count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from heatlens.cli.ddp import _config_flags, _override_key, ddp_strategy, HydraJobDDPStrategy

# A minimal Hydra + Lightning app: every rank of every job writes one line about itself.
APP = textwrap.dedent(
    """
    import json, os
    import hydra
    import torch.distributed as dist
    from lightning.pytorch import Trainer
    from lightning.pytorch.demos.boring_classes import BoringModel
    from heatlens.cli.ddp import ddp_job, ddp_strategy

    @hydra.main(version_base=None, config_path=None, config_name=None)
    def main(cfg):
        with ddp_job():
            trainer = Trainer(accelerator="cpu", devices=cfg.devices, strategy=ddp_strategy("ddp"),
                              max_steps=1, limit_train_batches=1, limit_val_batches=0,
                              logger=False, enable_checkpointing=False, enable_progress_bar=False,
                              enable_model_summary=False)
            trainer.fit(BoringModel())
            record = {"tag": cfg.tag, "rank": dist.get_rank(), "world": dist.get_world_size(),
                      "port": os.environ["MASTER_PORT"], "pid": os.getpid()}
            with open(cfg.record_file, "a") as handle:
                handle.write(json.dumps(record) + "\\n")

    if __name__ == "__main__":
        main()
    """
)


@pytest.mark.slow
def test_multirun_jobs_with_different_device_counts_each_get_their_own_group(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    records = tmp_path / "records.jsonl"
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, str(app), "-m", "+devices=2,1,2", f"+record_file={records}",
               "+tag=x", f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for name in ("MASTER_PORT", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK"):
        env.pop(name, None)
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    lines = [json.loads(line) for line in records.read_text().splitlines()]
    # Children replaying the sweep would add records (and more jobs); here: 2 + 1 + 2 ranks.
    assert len(lines) == 5
    by_world = sorted((r["world"], r["rank"]) for r in lines)
    assert by_world == [(1, 0), (2, 0), (2, 0), (2, 1), (2, 1)]
    two_device_ports = {r["port"] for r in lines if r["world"] == 2}
    assert len(two_device_ports) == 2, "the two 2-device jobs must not share a process group"
    # One sweep folder with one sub-folder per job, and no multirun folder created by a child.
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2"]
    assert not (tmp_path / "multirun").exists()
    assert not (tmp_path / "outputs").exists()


def test_only_subprocess_ddp_names_are_replaced() -> None:
    assert isinstance(ddp_strategy("ddp"), HydraJobDDPStrategy)
    replaced = ddp_strategy("ddp_find_unused_parameters_true")
    assert isinstance(replaced, HydraJobDDPStrategy) and replaced._ddp_kwargs["find_unused_parameters"]
    assert ddp_strategy("ddp_spawn") == "ddp_spawn"
    assert ddp_strategy("auto") == "auto"


def test_child_command_keeps_config_flags_and_override_keys_are_parsed() -> None:
    argv = ["-m", "--config-name=train", "-cp", "/conf", "a=1,2", "-cd", "/extra"]
    assert _config_flags(argv) == ["--config-name=train", "-cp", "/conf", "-cd", "/extra"]
    assert _override_key("hydra.sweep.dir=/x") == "hydra.sweep.dir"
    assert _override_key("++hydra.mode=MULTIRUN") == "hydra.mode"
    assert _override_key("hydra/launcher=basic") == "hydra/launcher"
    assert _override_key("~backbone@model=x") == "backbone"
