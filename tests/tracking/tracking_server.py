"""A real `mlflow server`, started with the command line of compose.yaml's `mlflow` service."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import yaml
from stores import sqlite_store

from heatlens.cli.ui import server_environment
from heatlens.paths import PROJECT_ROOT

START_LIMIT_S = 240  # a loaded 2-core machine needs a minute to import MLflow and open the store
# The server's job runner serves nothing heatlens uses: off, as heatlens-ui starts its server.
NO_JOBS = server_environment({})


def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())


def options(command: list[str]) -> dict[str, str | None]:
    """`--key=value` / `--flag` items of a command line -> {"--key": "value", "--flag": None}."""
    return {item.split("=", 1)[0]: (item.split("=", 1)[1] if "=" in item else None)
            for item in command if item.startswith("--")}


def server_command(root: Path, port: int) -> list[str]:
    """compose.yaml's server command with this machine's address, port and storage folders."""
    command = compose()["services"]["mlflow"]["command"]
    assert command[:2] == ["mlflow", "server"]
    local = {"--host": "127.0.0.1", "--port": str(port), "--backend-store-uri": sqlite_store(root),
             "--artifacts-destination": str(root / "artifacts"), "--allowed-hosts": f"127.0.0.1:{port}"}
    kept = [item for item in command[2:] if item.split("=", 1)[0] not in local]
    return [sys.executable, "-m", "mlflow", "server", *kept, *(f"{k}={v}" for k, v in local.items()), "--workers=1"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(process: subprocess.Popen, url: str, log: Path, limit_s: float = START_LIMIT_S) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # the server answers within 0.2 s of being up: no second lost per start
    raise RuntimeError(f"no answer from {url} within {limit_s} s: {log.read_text()[-3000:]}")


@contextmanager
def running(command: list[str], health_url: str, log: Path,
            env: Mapping[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """Start `command` in its own process group (`env` added to its environment), wait until `health_url`
    answers, always stop it."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": path, **(env or {})}
    with open(log, "w") as sink:
        # Its own group: the MLflow CLIs start uvicorn as a child, stopped together with it.
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_until_healthy(process, health_url, log)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            # An idle server stops in ~5 s on a loaded machine; one still draining a kept-alive client
            # connection is killed: its store is the test's and read no more.
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
