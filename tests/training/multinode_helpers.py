"""Helpers of the multi-node tests: "nodes" as processes on this host, started as torchrun or srun would,
a single-process re-explanation of the same checkpoint, and the comparison of the two runs' explanations."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from in_process import run_main
from mlflow.tracking import MlflowClient
from stores import sqlite_store

from heatlens.cli.explain import main as explain_main
from heatlens.paths import PROJECT_ROOT

# Variables of a launcher this test process may itself run under: the "nodes" must see only their own.
_LAUNCH_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK",
                "LOCAL_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE", "GROUP_WORLD_SIZE")
_LAUNCH_PREFIXES = ("SLURM_", "TORCHELASTIC_", "PL_")
# Lightning's SLURMEnvironment: MASTER_PORT = 15000 + the last 4 digits of SLURM_JOB_ID.
SLURM_PORT_BASE = 15000


def is_launch_var(name: str) -> bool:
    return name in _LAUNCH_VARS or name.startswith(_LAUNCH_PREFIXES)


def clean_env(root: Path) -> dict[str, str]:
    """This process's environment without launcher variables, with a private MLflow store and data
    cache under `root` and one torch thread per process (2 shared cores)."""
    env = {name: value for name, value in os.environ.items() if not is_launch_var(name)}
    return env | {"MLFLOW_TRACKING_URI": sqlite_store(root), "HEATLENS_CACHE": str(root / "cache"),
                  "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_job_id_with_free_port() -> str:
    """A SLURM job id whose port (as Lightning derives it, no MASTER_PORT set) is free here."""
    start = os.getpid() % 10_000  # spread concurrent test sessions over the range
    for step in range(10_000):
        offset = (start + step) % 10_000
        if _is_free(SLURM_PORT_BASE + offset):
            return f"7{offset:04d}"
    raise RuntimeError("no free port in 15000-24999 for a SLURM job id")


def srun_env(base: dict[str, str], job_id: str, node: int, nodes: int = 2) -> dict[str, str]:
    """What `srun` sets for task `node` of a job of `nodes` nodes, one task each, all on this host."""
    return base | {
        "SLURM_JOB_ID": job_id, "SLURM_JOBID": job_id, "SLURM_JOB_NAME": "heatlens-multinode",
        "SLURM_NTASKS": str(nodes), "SLURM_NPROCS": str(nodes), "SLURM_NNODES": str(nodes),
        "SLURM_JOB_NUM_NODES": str(nodes), "SLURM_NTASKS_PER_NODE": "1", "SLURM_TASKS_PER_NODE": f"1(x{nodes})",
        "SLURM_NODELIST": "localhost", "SLURM_JOB_NODELIST": "localhost", "SLURMD_NODENAME": "localhost",
        "SLURM_PROCID": str(node), "SLURM_LOCALID": "0", "SLURM_NODEID": str(node),
        "SLURM_STEP_ID": "0", "SLURM_STEPID": "0",
    }


@dataclass
class Node:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def run_nodes(commands: Sequence[Sequence[str]], envs: Sequence[dict[str, str]], logs: Path,
              timeout_s: float) -> list[str]:
    """Start one process per "node" at once and wait for all; returns their outputs. A node that fails
    fails the caller at once (the others would wait for it forever), as does a hang; no process
    started here (nor torchrun's workers) is left afterwards."""
    logs.mkdir(parents=True, exist_ok=True)
    nodes: list[Node] = []
    try:
        for number, (command, env) in enumerate(zip(commands, envs)):
            log = logs / f"node{number}.log"
            with log.open("w") as sink:
                process = subprocess.Popen(list(command), cwd=PROJECT_ROOT, env=env, stdout=sink,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            nodes.append(Node(process, log))
        deadline = time.monotonic() + timeout_s
        while any(node.process.poll() is None for node in nodes):
            for number, node in enumerate(nodes):
                assert node.process.poll() in (None, 0), f"node {number} failed:\n{node.output()[-4000:]}"
            assert time.monotonic() < deadline, f"nodes still run after {timeout_s} s (a hang?):\n" + "\n".join(
                f"node {number}: ...{node.output()[-1500:]}" for number, node in enumerate(nodes))
            time.sleep(0.5)
        for number, node in enumerate(nodes):
            assert node.process.returncode == 0, f"node {number} failed:\n{node.output()[-4000:]}"
        return [node.output() for node in nodes]
    finally:
        _stop(nodes)


def _stop(nodes: Sequence[Node], grace_s: float = 30) -> None:
    """SIGTERM first: torchrun then stops its workers (they run in sessions of their own); SIGKILL after
    `grace_s`. Only the sessions started here are signalled."""
    running = [node.process for node in nodes if node.process.poll() is None]
    for process in running:
        os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def reexplain_single_process(run_id: str, overrides: Sequence[str], env: dict[str, str], out: Path) -> str:
    """Explain `run_id`'s selected checkpoint again in one process, this one (tests/in_process.py: the
    entry point's subprocess smoke test is tests/callbacks/test_explain_run.py); returns the child run's id."""
    done = run_main(explain_main, f"run_id={run_id}", "trainer=cpu", *overrides, f"hydra.run.dir={out}", env=env,
                    program="heatlens-explain")
    assert done.returncode == 0, f"re-explaining {run_id} failed:\n{(done.stdout + done.stderr)[-4000:]}"
    return done.stdout.split("into child run ")[1].split()[0]


def _arrays(client: MlflowClient, run_id: str, path: str, tmp: Path) -> dict[str, np.ndarray]:
    with np.load(client.download_artifacts(run_id, path, str(tmp / run_id))) as arrays:
        return {key: arrays[key] for key in arrays.files}


def assert_same_explanations(client: MlflowClient, run_id: str, reference_id: str, tmp: Path) -> None:
    """Every `xai/` metric and every array of `explain/*.npz` of `run_id` equals the reference run's
    (floats within tolerance, NaN where the reference has NaN; ids and labels exactly)."""
    metrics, reference = client.get_run(run_id).data.metrics, client.get_run(reference_id).data.metrics
    xai = {key for key in reference if key.startswith("xai/")}
    assert xai == {key for key in metrics if key.startswith("xai/")} and len(xai) > 20
    for key in sorted(xai):
        np.testing.assert_allclose(metrics[key], reference[key], rtol=1e-5, atol=1e-6, err_msg=key)
    files = {entry.path for entry in client.list_artifacts(reference_id, "explain")}
    assert files == {entry.path for entry in client.list_artifacts(run_id, "explain")}
    assert {f"explain/{name}.npz" for name in ("gradcam", "aopc", "heatmap_stats", "localisation",
                                                "embeddings")} <= files
    for path in sorted(files):
        ours, theirs = _arrays(client, run_id, path, tmp), _arrays(client, reference_id, path, tmp)
        assert ours.keys() == theirs.keys(), path
        for key, expected in theirs.items():
            if expected.dtype.kind in "fc":
                np.testing.assert_allclose(ours[key], expected, rtol=1e-4, atol=1e-5, err_msg=f"{path}:{key}")
            else:
                assert np.array_equal(ours[key], expected), f"{path}:{key}"
