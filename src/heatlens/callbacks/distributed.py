"""Share the test set between DDP ranks and gather variable-size results on rank 0.

Lightning's DistributedSampler pads every shard to the same length by repeating samples, so a
sample can be drawn by two ranks. `owned_indices` gives each sample to exactly one rank; after the
explanation work, `gather_by_index` collects the per-sample rows on rank 0, ordered by sample
index, so the result does not depend on the number of ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world() -> tuple[int, int]:
    """(global rank, world size); (0, 1) outside a process group."""
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _collective_device() -> torch.device:
    # NCCL only moves CUDA tensors; gloo only CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_rows(rows: torch.Tensor) -> list[torch.Tensor]:
    """All-gather tensors whose first dimension differs between ranks (zero rows allowed).

    Ranks first exchange (row count, row shape, dtype); a rank without rows takes the row shape and
    dtype of the others, so it needs to know neither. Rows are then padded to the largest count (at
    least one row: no rank ever sends an empty tensor), all-gathered, and the padding cut off.
    Returns one CPU tensor per rank, in rank order.
    """
    if not is_distributed():
        return [rows.detach().cpu()]
    world = dist.get_world_size()
    described: list[tuple[int, tuple[int, ...], torch.dtype] | None] = [None] * world
    dist.all_gather_object(described, (rows.shape[0], tuple(rows.shape[1:]), rows.dtype))
    layouts = {(shape, dtype) for count, shape, dtype in described if count > 0}
    if len(layouts) > 1:
        raise ValueError(f"all_gather_rows: ranks disagree on the row shape / dtype: {sorted(map(str, layouts))}")
    shape, dtype = layouts.pop() if layouts else (tuple(rows.shape[1:]), rows.dtype)
    sizes = [count for count, _, _ in described]
    device = _collective_device()
    padded = torch.zeros((max(max(sizes), 1), *shape), dtype=dtype, device=device)
    if rows.shape[0]:
        padded[: rows.shape[0]] = rows.detach().to(device)
    received = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(received, padded)
    return [chunk[:size].cpu() for chunk, size in zip(received, sizes)]


def sampler_indices(dataloader: DataLoader) -> list[int]:
    """Dataset positions this rank's dataloader will visit, in order (repeats included)."""
    sampler = dataloader.sampler
    batch_sampler = getattr(dataloader, "batch_sampler", None)
    if batch_sampler is not None and getattr(batch_sampler, "sampler", None) is not None:
        sampler = batch_sampler.sampler
    return [int(i) for i in sampler]


def owned_indices(local_indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Split the sampled dataset positions into disjoint per-rank shares.

    A position drawn by several ranks (DistributedSampler padding) belongs to the lowest rank
    that draws it. Returns (positions this rank owns, all distinct positions over all ranks),
    both sorted.
    """
    local = torch.as_tensor(np.asarray(local_indices, dtype=np.int64))
    per_rank = [chunk.numpy() for chunk in all_gather_rows(local)]
    rank, _ = rank_and_world()
    claimed: set[int] = set()
    mine = np.empty(0, dtype=np.int64)
    for r, positions in enumerate(per_rank):
        unique = np.unique(positions)
        fresh = unique[~np.isin(unique, np.fromiter(claimed, dtype=np.int64, count=len(claimed)))]
        if r == rank:
            mine = fresh
        claimed.update(fresh.tolist())
    everything = np.array(sorted(claimed), dtype=np.int64)
    return mine, everything


def _as_tensor(value: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        return tensor.to(torch.uint8) if tensor.dtype == torch.bool else tensor
    array = np.ascontiguousarray(value)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    return torch.from_numpy(array)


def gather_by_index(
    index: np.ndarray | torch.Tensor, arrays: Mapping[str, np.ndarray | torch.Tensor]
) -> dict[str, np.ndarray] | None:
    """Gather per-sample rows from every rank onto rank 0, sorted by sample index.

    `index` (n,) and every array (n, ...) hold this rank's rows (n may be 0). Rank 0 receives
    {"index": (N,), name: (N, ...)} with duplicate indices dropped (first occurrence kept); the
    other ranks receive None. Every rank must call this (it is a collective).
    """
    index_t = _as_tensor(index).to(torch.int64).reshape(-1)
    for name, value in arrays.items():
        if value.shape[0] != index_t.shape[0]:
            raise ValueError(f"gather_by_index: array {name!r} has {value.shape[0]} rows, index has {index_t.shape[0]}")
    gathered_index = torch.cat(all_gather_rows(index_t)).numpy()
    gathered = {name: torch.cat(all_gather_rows(_as_tensor(value))).numpy() for name, value in arrays.items()}
    rank, _ = rank_and_world()
    if rank != 0:
        return None
    unique, first = np.unique(gathered_index, return_index=True)
    result = {"index": unique}
    for name, value in gathered.items():
        was_bool = arrays[name].dtype in (np.bool_, torch.bool)
        result[name] = value[first].astype(bool) if was_bool else value[first]
    return result
