"""Probes of the `scale` benchmark: memory of a whole process tree, phase marks, data-wait timing.

Memory is sampled from /proc at a fixed interval over a process and every descendant (DataLoader
workers, cache and phantom build workers), two ways, both leaving out file-backed pages (the page
cache of the memory-mapped decode cache, the PNGs, shared libraries):

- `anon`: the sum of `RssAnon + RssShmem` of /proc/<pid>/status. A page a forked worker still shares
  copy-on-write with its parent counts once per process, so this overstates a tree of forked workers.
- `pss`: the sum of `Pss_Anon + Pss_Shmem` of /proc/<pid>/smaps_rollup: each shared page is split
  among the processes mapping it, so the sum is the memory the tree really holds.

Phases are marked by the measured processes themselves: `mark(name)` appends a line with the
monotonic clock (system-wide on Linux) to the file named by $HEATLENS_SCALE_MARKS.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L

MARKS_ENV = "HEATLENS_SCALE_MARKS"
_STATUS_FIELDS = ("RssAnon:", "RssShmem:")
_ROLLUP_FIELDS = ("Pss_Anon:", "Pss_Shmem:")


def mark(name: str, **values: object) -> None:
    """Record that phase mark `name` happened now (no-op unless $HEATLENS_SCALE_MARKS names a file)."""
    path = os.environ.get(MARKS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"mark": name, "t": time.monotonic(), **values}) + "\n")


def read_marks(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def first_mark(marks: list[dict], name: str) -> dict | None:
    return next((m for m in marks if m["mark"] == name), None)


def _kib_fields(path: str, fields: tuple[str, ...]) -> int | None:
    """Sum of the kB `fields` of a /proc file, in bytes; None when the process has gone."""
    try:
        with open(path) as f:
            return 1024 * sum(int(line.split()[1]) for line in f if line.startswith(fields))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def descendants(root: int) -> list[int]:
    """`root` and every process below it (by parent pid; /proc/<pid>/task/*/children is not always there)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        parent = int(stat[stat.rfind(")") + 2:].split()[1])  # field 4; the name in () may hold spaces
        children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


@dataclass(frozen=True)
class MemorySample:
    t: float  # time.monotonic()
    anon: int  # bytes: sum of RssAnon + RssShmem over the tree
    pss: int | None  # bytes: sum of Pss_Anon + Pss_Shmem over the tree; None: not read this time
    processes: int
    load: float  # 1-minute load average of the machine


class TreeMemory:
    """Samples the memory of `pid` and its descendants every `interval` s in a thread (a context manager).

    `pss` is read every `pss_every`-th sample only: the kernel walks every mapped page for
    smaps_rollup (about 25 ms per GiB here): at every sample it would take a good share of a core from the
    job being measured. Status counters cost microseconds.
    """

    def __init__(self, pid: int, interval: float = 0.25, pss_every: int = 8) -> None:
        self.pid, self.interval, self.pss_every = pid, interval, pss_every
        self.samples: list[MemorySample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self, with_pss: bool = True) -> MemorySample | None:
        anon = pss = count = 0
        for pid in descendants(self.pid):
            status = _kib_fields(f"/proc/{pid}/status", _STATUS_FIELDS)
            if status is None:
                continue  # exited between listing and reading
            rollup = _kib_fields(f"/proc/{pid}/smaps_rollup", _ROLLUP_FIELDS) if with_pss else 0
            anon, pss, count = anon + status, pss + (rollup or 0), count + 1
        if not count:
            return None
        return MemorySample(time.monotonic(), anon, pss if with_pss else None, count, os.getloadavg()[0])

    def _loop(self) -> None:
        while not self._stop.is_set():
            taken = self.sample(with_pss=len(self.samples) % self.pss_every == 0)
            if taken is not None:
                self.samples.append(taken)
            self._stop.wait(self.interval)

    def peak(self, start: float = float("-inf"), end: float = float("inf")) -> dict[str, float | None]:
        """Within [start, end]: peak `anon` and `pss` (MiB), most processes, mean and highest load."""
        inside = [s for s in self.samples if start <= s.t <= end]
        with_pss = [s.pss for s in inside if s.pss is not None]
        if not inside:
            return {"anon_mib": None, "pss_mib": None, "processes": 0, "samples": 0, "load": None, "load_max": None}
        return {"anon_mib": round(max(s.anon for s in inside) / 2**20, 1),
                "pss_mib": round(max(with_pss) / 2**20, 1) if with_pss else None,
                "processes": max(s.processes for s in inside), "samples": len(inside),
                "load": round(sum(s.load for s in inside) / len(inside), 2),
                "load_max": round(max(s.load for s in inside), 2)}


class PhaseMarks(L.Callback):
    """Marks the phases of a training job and times its training batches (added with
    `+callbacks.scale_marks._target_=heatlens.bench.scale_probe.PhaseMarks`).

    Data wait of a batch: from the previous batch's `on_train_batch_end` (the first: the epoch's
    start) to its `on_train_batch_start`. Lightning fetches the batch in between (a DataLoader of
    known length is not prefetched), so the gap is the wait for data plus the loop's own bookkeeping:
    an upper bound. Step: `on_train_batch_start` to `on_train_batch_end` (forward, backward,
    optimiser, logging). This callback's hooks run after the progress bar's.
    """

    def __init__(self) -> None:
        self._last = 0.0
        self._started = 0.0
        self.waits: list[float] = []
        self.steps: list[float] = []
        self.images = 0
        self._predicting = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from heatlens.tracking import RunHandle  # MLflow: only in the training job (scale_prepare uses `mark`)

        mark("fit_start", run_id=RunHandle.from_trainer(trainer).run_id if trainer.is_global_zero else None)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = time.monotonic()
        mark("train_epoch_start")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._started = time.monotonic()
        self.waits.append(self._started - self._last)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last = time.monotonic()
        self.steps.append(self._last - self._started)
        self.images += len(batch["image"])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            mark("validation_start", batches=len(self.steps), images=self.images, step_s=sum(self.steps),
                 first_wait_s=self.waits[0] if self.waits else 0.0, wait_s=sum(self.waits[1:]))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            mark("validation_end")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loaders = trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, (list, tuple)) else loaders
        mark("test_start", images=len(loader.dataset))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs before PostFitExplanations.on_test_end (callbacks of `callbacks` come first).
        mark("explain_start")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._predicting:
            self._predicting = True
            mark("predict_start")
