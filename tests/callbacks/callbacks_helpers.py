"""Helpers of the callbacks tests: a real multi-process gloo group on CPU, entry-point subprocesses, and a
tiny contract model with a class-ordered image set for the explanation flow."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from explain_models import TinyConvNet
from torch.utils.data import Dataset

from heatlens.paths import PROJECT_ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# What the ranks' server process imports once: each rank is then a fork of it. Spawned ranks paid the
# ~7 s of CPU to import torch, Lightning and heatlens each (8 ranks in the suite); a fork of an
# interpreter with one thread and no OpenMP pool yet is safe, unlike a fork of this pytest worker.
mp.set_forkserver_preload(["torch", "lightning", "heatlens.callbacks", "callbacks_helpers"])


def _entry(rank: int, fn: Callable, world_size: int, port: int, environ: dict[str, str], args: tuple) -> None:
    os.environ.clear()  # the caller's environment now, not the one the fork server started with
    os.environ.update(environ)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_in_group(fn: Callable, world_size: int, *args: object, timeout_s: float = 120.0) -> None:
    """Call fn(rank, world_size, *args) in `world_size` new processes (forks of a fork server that has
    imported torch and heatlens); a failure or hang fails the caller."""
    context = mp.start_processes(_entry, args=(fn, world_size, _free_port(), dict(os.environ), args),
                                 nprocs=world_size, join=False, start_method="forkserver")
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


class ClassOrderedImages(Dataset):
    """Images listed class by class, as datasets on disk are (`sizes[c]` images of class c), items as the
    datamodule makes them; the mask kind `lung` covers the left half of every image."""

    mask_kinds = ["lung"]

    def __init__(self, sizes: tuple[int, ...] = (12, 6, 2), side: int = 16) -> None:
        self.labels = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
        self.ids = [f"class{c}/{i:03d}.png" for i, c in enumerate(self.labels)]
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(len(self.labels), 1, side, side, generator=generator)
        self.mask = torch.zeros(1, side, side, dtype=torch.uint8)
        self.mask[:, :, : side // 2] = 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": torch.tensor(self.labels[index]),
                "index": torch.tensor(index), "masks": {"lung": self.mask}}


class ToyModule(L.LightningModule):
    """What PostFitExplanations needs of the LightningModule: `net`, `class_names`, a test step."""

    def __init__(self, seed: int, num_classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = TinyConvNet(num_classes=num_classes, width=4)
        self.class_names = [f"class {c}" for c in range(num_classes)]

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self.net(batch["image"])
