"""Chunks of CPU-bound work (phantom rendering, decoding) spread over worker processes.

Processes, not threads: decoding a PNG spends about 76 % of its time in OpenCV calls that release
the GIL, but a DICOM only about 13 % (pydicom parses in Python; measured with cProfile on 299 px
files), so threads would give DICOM datasets at most about 1.15x on two cores. One worker per core,
torch single-threaded in each. Results come back in task order with at most two chunks per worker in
flight, so nothing piles up in memory however many images there are. `data.build_workers` (null:
every core this process may use) sets the count.
"""

import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from itertools import islice
from typing import Any

import torch

from heatlens.data.errors import DataError


def worker_count(requested: int | None = None) -> int:
    """`requested` processes, or every core this process may run on (its CPU affinity, not the machine's)."""
    if requested is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise DataError(f"data.build_workers={requested!r}: expected an integer >= 1 or null (every core)")
    return requested


def _torch_single_threaded() -> None:
    torch.set_num_threads(1)  # as PyTorch's own DataLoader workers do


@contextmanager
def _one_core_here() -> Iterator[None]:
    """torch single-threaded in this process until done (forked workers inherit it). OpenCV's thread
    count is left alone: cv2.setNumThreads in a process forked after OpenCV's pool ran deadlocks (the
    pool waits for threads that were not forked), and this code may itself run in such a process."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


Runner = Callable[[Callable[..., Any], Iterable[tuple]], Iterator[Any]]


@contextmanager
def chunk_runner(workers: int) -> Iterator[Runner]:
    """Yields `run(function, tasks)`, an iterator of `function(*task)` in task order.

    The workers are started on entry, before the caller opens a progress display (its refresh thread
    must not exist when they fork). Fork on Linux: workers start in milliseconds with the parent's
    modules loaded and run only NumPy / OpenCV / pydicom / CPU torch code, as PyTorch's own DataLoader
    workers do; elsewhere spawn.
    """
    with _one_core_here():
        if workers <= 1:
            yield lambda function, tasks: (function(*task) for task in tasks)
            return
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_torch_single_threaded) as pool:
            pool.submit(int).result()  # starts every worker now

            def run(function: Callable[..., Any], tasks: Iterable[tuple]) -> Iterator[Any]:
                pending: deque[Future] = deque()
                remaining = iter(tasks)
                try:
                    for task in islice(remaining, 2 * workers):
                        pending.append(pool.submit(function, *task))
                    while pending:
                        result = pending.popleft().result()
                        for task in islice(remaining, 1):
                            pending.append(pool.submit(function, *task))
                        yield result
                finally:  # the caller stopped early (an error): drop what has not started
                    for future in pending:
                        future.cancel()

            yield run
