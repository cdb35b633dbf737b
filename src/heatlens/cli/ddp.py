"""DDP that stays correct inside a Hydra multirun (Lightning issue 11300).

Lightning's subprocess launcher starts ranks 1..N-1 by re-running `sys.argv`. Under `-m` that argv
is the whole sweep, so every child replays every job (and the ranks of one job disagree about
`trainer.devices` as soon as the jobs differ in it). Here the children re-run only the current
job: the job's own overrides, in RUN mode, in the job's output folder. `ddp_job` brackets one
job: it waits for that job's children, destroys its process group and restores the DDP
environment variables, so the next job of the sweep starts a fresh group on a fresh port.

Under an external launcher (`torchrun`, SLURM's `srun`) every rank is started by the launcher and
runs `train.py` itself: Lightning's cluster environment (TorchElastic, SLURM) reads the ranks from
the environment and `creates_processes_externally`, so the launcher starts no process and nothing
is reaped (docs/howto/multi-node.md).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, Strategy, StrategyRegistry
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

log = logging.getLogger(__name__)

# Set by Lightning's launcher in the parent process; they must not leak into the next job.
DDP_ENV_VARS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "OMP_NUM_THREADS")
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
# Hydra settings the child must not inherit: it runs one job, in the parent job's folder.
_HYDRA_KEYS_REPLACED = (
    "hydra.mode", "hydra.run", "hydra.sweep", "hydra.job.name", "hydra.output_subdir",
    "hydra/launcher", "hydra.launcher", "hydra/sweeper", "hydra.sweeper",
)
CHILD_WAIT_S = 120.0

_launched: list[subprocess.Popen] = []


def _override_key(override: str) -> str:
    return override.lstrip("~+").split("=", 1)[0].split("@", 1)[0]


def _config_flags(argv: Sequence[str]) -> list[str]:
    """The --config-path/--config-name/--config-dir arguments of the command line, as given."""
    kept: list[str] = []
    tokens = list(argv)
    for position, token in enumerate(tokens):
        flag = token.split("=", 1)[0]
        if flag in _CONFIG_FLAGS:
            kept.append(token)
            if "=" not in token and position + 1 < len(tokens):
                kept.append(tokens[position + 1])
    return kept


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def job_subprocess_cmd(local_rank: int) -> tuple[list[str], str]:
    """Command and working directory that re-run the current Hydra job (only it) as `local_rank`."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += _config_flags(sys.argv[1:])
    command += list(hydra_cfg.overrides.task)
    command += [o for o in hydra_cfg.overrides.hydra if not _override_key(o).startswith(_HYDRA_KEYS_REPLACED)]
    command += [
        "hydra.mode=RUN",
        f"hydra.run.dir={_quote(hydra_cfg.runtime.output_dir)}",
        f"hydra.job.name={hydra_cfg.job.name}_ddp_process_{local_rank}",
        # Rank 0 already saved this job's .hydra/ config; children must not overwrite it.
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


class HydraJobLauncher(_SubprocessScriptLauncher):
    """Lightning's subprocess launcher, but children re-run the current Hydra job instead of sys.argv."""

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            super()._call_children_scripts()
            _launched.extend(self.procs)
            return
        self._check_can_spawn_children()
        self.procs = []
        os.environ["MASTER_ADDR"] = self.cluster_environment.main_address
        os.environ["MASTER_PORT"] = str(self.cluster_environment.main_port)
        os.environ["NODE_RANK"] = str(self.cluster_environment.node_rank())
        os.environ["LOCAL_RANK"] = str(self.cluster_environment.local_rank())
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        for local_rank in range(1, self.num_processes):
            env = os.environ.copy()
            env["LOCAL_RANK"] = str(local_rank)
            if os.environ.get("PL_GLOBAL_SEED") is None:
                env.pop("PL_GLOBAL_SEED", None)
            command, cwd = job_subprocess_cmd(local_rank)
            log.info("DDP rank %d: %s", local_rank, " ".join(command))
            self.procs.append(subprocess.Popen(command, env=env, cwd=cwd))
        _launched.extend(self.procs)


class HydraJobDDPStrategy(DDPStrategy):
    """DDPStrategy (start_method popen) whose child processes run only the current Hydra job."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if isinstance(self._launcher, _SubprocessScriptLauncher):
            self._launcher = HydraJobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)


def ddp_strategy(strategy: str | Strategy) -> str | Strategy:
    """The strategy to give the Trainer: registered subprocess-DDP names become `HydraJobDDPStrategy`.

    Everything else (`auto`, `ddp_spawn`, strategy objects, ...) is returned unchanged.
    """
    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return strategy
    entry = StrategyRegistry[strategy]
    params = dict(entry["init_params"])
    if entry["strategy"] is not DDPStrategy or params.get("start_method", "popen") != "popen":
        return strategy
    return HydraJobDDPStrategy(**params)


def _reap_children(timeout_s: float) -> None:
    while _launched:
        process = _launched.pop()
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("DDP child %d still running %.0f s after its job ended: killing it", process.pid, timeout_s)
            process.kill()
            process.wait()
            continue
        if code != 0:
            log.warning("DDP child %d exited with code %d", process.pid, code)


@contextmanager
def ddp_job(child_wait_s: float = CHILD_WAIT_S) -> Iterator[None]:
    """Bracket one (Hydra) job that may train with DDP: at its end, reap the job's child ranks,
    destroy its process group and restore the DDP environment variables and thread count."""
    saved_env = {name: os.environ.get(name) for name in DDP_ENV_VARS}
    saved_threads = torch.get_num_threads()
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        # The ranks this process launched, if any (none under torchrun / srun). Not keyed on the rank:
        # with Lightning's own launcher on several nodes, each node's first process launches the others.
        _reap_children(child_wait_s)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(saved_threads)
