"""Helpers of the callbacks tests: a real multi-process gloo group on CPU, and entry-point subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import torch.distributed as dist
import torch.multiprocessing as mp

from heatlens.paths import PROJECT_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _entry(rank: int, fn: Callable, world_size: int, port: int, args: tuple) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_in_group(fn: Callable, world_size: int, *args: object, timeout_s: float = 120.0) -> None:
    """Call fn(rank, world_size, *args) in `world_size` spawned processes; a failure or hang fails the caller."""
    context = mp.start_processes(
        _entry, args=(fn, world_size, _free_port(), args), nprocs=world_size, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"process group of {world_size} did not finish within {timeout_s} s (hang?)")


def run_entry_point(args: list[str], env: dict[str, str], timeout_s: float = 400) -> subprocess.CompletedProcess:
    """`python <args>` from the project root; a failure shows the end of its output."""
    done = subprocess.run([sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout_s)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{(done.stdout + done.stderr)[-4000:]}"
    return done
