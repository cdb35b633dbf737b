"""Sharding and gathering in a real 2-process gloo group on CPU."""

from __future__ import annotations

import numpy as np
import torch
from callbacks_helpers import run_in_group
from torch.utils.data import DataLoader, DistributedSampler

from heatlens.callbacks.distributed import gather_by_index, owned_indices, sampler_indices


def _shard_and_gather(rank: int, world_size: int, dataset_size: int) -> None:
    dataset = list(range(dataset_size))
    loader = DataLoader(dataset, batch_size=2, sampler=DistributedSampler(dataset, shuffle=False))
    drawn = sampler_indices(loader)
    mine, everything = owned_indices(drawn)

    # DistributedSampler pads with repeats: together the ranks draw more than the dataset holds.
    assert len(drawn) * world_size > dataset_size
    assert set(mine) <= set(drawn)
    assert everything.tolist() == list(range(dataset_size))

    rows = torch.from_numpy(mine.astype(np.float32))[:, None] * torch.tensor([[1.0, -1.0]])
    gathered = gather_by_index(mine, {"rows": rows, "flag": mine % 2 == 0})
    if rank != 0:
        assert gathered is None
        return
    # Each sample arrives exactly once, in index order, rows still attached to their sample.
    assert gathered["index"].tolist() == list(range(dataset_size))
    expected = np.stack([np.arange(dataset_size), -np.arange(dataset_size)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(gathered["rows"], expected)
    assert gathered["flag"].dtype == bool
    assert gathered["flag"].tolist() == [i % 2 == 0 for i in range(dataset_size)]


def _one_rank_empty(rank: int, world_size: int) -> None:
    # Rank 1 has nothing to explain (e.g. a one-image test set): the gather must not hang.
    # The empty rank cannot know the row shape or dtype: it sends a bare empty array.
    index = np.array([4, 2, 7]) if rank == 0 else np.empty(0, dtype=np.int64)
    maps = torch.arange(18, dtype=torch.float16).reshape(3, 2, 3) if rank == 0 else torch.empty(0)
    gathered = gather_by_index(index, {"maps": maps})
    if rank == 0:
        assert gathered["index"].tolist() == [2, 4, 7]
        assert gathered["maps"].dtype == np.float16
        np.testing.assert_array_equal(gathered["maps"], maps.numpy()[[1, 0, 2]])


def _repeats_are_dropped(rank: int, world_size: int) -> None:
    # Both ranks hold sample 3 (a padding repeat): rank 0 keeps one row for it.
    index = np.array([1, 3]) if rank == 0 else np.array([0, 3])
    values = torch.tensor([float(i) for i in index])
    gathered = gather_by_index(index, {"values": values})
    if rank == 0:
        assert gathered["index"].tolist() == [0, 1, 3]
        assert gathered["values"].tolist() == [0.0, 1.0, 3.0]


def _all_cases(rank: int, world_size: int) -> None:
    _shard_and_gather(rank, world_size, 7)
    _shard_and_gather(rank, world_size, 1)
    _one_rank_empty(rank, world_size)
    _repeats_are_dropped(rank, world_size)


def test_sharding_and_gathering_in_a_two_process_group() -> None:
    # One group for every case: starting processes is what costs time on 2 cores.
    run_in_group(_all_cases, 2)


def test_without_a_process_group_everything_is_owned_locally() -> None:
    mine, everything = owned_indices([3, 1, 1, 2])
    assert mine.tolist() == [1, 2, 3] and everything.tolist() == [1, 2, 3]
    gathered = gather_by_index(np.array([2, 1]), {"x": np.array([[20.0], [10.0]])})
    assert gathered["index"].tolist() == [1, 2]
    assert gathered["x"][:, 0].tolist() == [10.0, 20.0]
