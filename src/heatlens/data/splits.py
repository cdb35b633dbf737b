"""Seeded stratified (optionally group-aware) train / val / test splits, predefined splits, balancing."""

import hashlib
import logging
from collections.abc import Sequence

import numpy as np

from heatlens.data.errors import DataError
from heatlens.data.samples import SPLITS

log = logging.getLogger(__name__)

BALANCE_MODES = ("none", "downsample", "class_weights")


def validate_ratios(ratios: Sequence[float]) -> list[float]:
    ratios = [float(r) for r in ratios]
    if len(ratios) not in (2, 3) or min(ratios) <= 0 or abs(sum(ratios) - 1.0) > 1e-6:
        raise DataError(f"data.split={ratios}: need 2 (train, held-out) or 3 (train, val, test) positive "
                        "ratios summing to 1")
    return ratios


def _stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shuffled order in which every class is spread evenly, so any contiguous cut is stratified.

    Own code rather than sklearn's train_test_split: it cuts any number of splits by exact global
    sizes and still works when a class has fewer members than there are splits.
    """
    position = np.empty(len(labels))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        position[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return np.argsort(position, kind="stable")


def _cut(order: np.ndarray, ratios: list[float]) -> list[np.ndarray]:
    bounds = np.rint(np.cumsum(ratios)[:-1] * len(order)).astype(int)
    return np.split(order, bounds)


def _group_split(labels: np.ndarray, groups: np.ndarray, ratios: list[float],
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Whole groups to splits, greedily filling the split whose per-class quota the group helps most
    (sklearn's StratifiedGroupKFold makes equal folds only, not arbitrary ratios)."""
    classes = np.unique(labels)
    group_ids, group_of = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(group_ids), len(classes)))
    np.add.at(counts, (group_of, np.searchsorted(classes, labels)), 1)
    assignment = _assign_groups(counts, ratios, rng)
    return [np.flatnonzero(assignment[group_of] == s) for s in range(len(ratios))]


def _assign_groups(counts: np.ndarray, ratios: list[float], rng: np.random.Generator) -> np.ndarray:
    """Split index per group (row of `counts`: its members per stratum), biggest groups first, each to
    the split whose remaining quota, as a share of each stratum's total, the group fills most."""
    class_totals = np.maximum(counts.sum(axis=0), 1.0)
    target = np.outer(ratios, class_totals)
    filled = np.zeros_like(target)
    visit = rng.permutation(len(counts))
    visit = visit[np.argsort(-counts[visit].sum(axis=1), kind="stable")]  # big groups first
    assignment = np.empty(len(counts), dtype=int)
    for g in visit:
        need = ((target - filled) / class_totals) @ counts[g]
        split = int(np.argmax(need + 1e-9 * np.asarray(ratios)))
        assignment[g] = split
        filled[split] += counts[g]
    return assignment


def _multilabel_split(matrix: np.ndarray, groups: np.ndarray | None, ratios: list[float],
                      rng: np.random.Generator) -> list[np.ndarray]:
    """Iterative stratification (Sechidis et al. 2011) over whole groups (patients): the finding with the
    fewest positives left is placed first, each of its groups (biggest first) going to the split that
    still needs the most of that finding's positives, then the most images; groups without positives
    fill the splits by size. Unknown (NaN) labels count as absent."""
    groups = np.arange(len(matrix)) if groups is None else groups
    group_ids, group_of = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(group_ids), matrix.shape[1]))
    np.add.at(counts, group_of, np.nan_to_num(matrix, nan=0.0) == 1.0)
    sizes = np.bincount(group_of, minlength=len(group_ids)).astype(float)
    wanted = np.outer(ratios, counts.sum(axis=0))
    wanted_size = np.asarray(ratios) * len(matrix)
    assignment = np.full(len(group_ids), -1)
    order = rng.permutation(len(group_ids))
    order = order[np.argsort(-sizes[order], kind="stable")]
    remaining = counts.sum(axis=0)

    def place(g: int, split: int) -> None:
        assignment[g] = split
        wanted[split] -= counts[g]
        wanted_size[split] -= sizes[g]
        remaining[:] -= counts[g]

    while np.any(remaining > 0):
        open_findings = np.flatnonzero(remaining > 0)
        finding = open_findings[np.argmin(remaining[open_findings])]
        for g in order[(counts[order, finding] > 0) & (assignment[order] < 0)]:
            place(g, int(np.lexsort((wanted_size, wanted[:, finding]))[-1]))
    for g in order[assignment[order] < 0]:
        place(g, int(np.argmax(wanted_size)))
    return [np.flatnonzero(assignment[group_of] == s) for s in range(len(ratios))]


def make_splits(labels: np.ndarray, ratios: list[float], seed: int, groups: np.ndarray | None = None,
                predefined: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Indices of each split. `labels`: class index per sample, or an (N, K) multi-label matrix (1 / 0 /
    NaN). `predefined` (split name per sample) wins; a missing val is carved from train (3 ratios) or
    is the held-out set (2 ratios)."""
    rng = np.random.default_rng(seed)

    def divide(index: np.ndarray, parts: list[float]) -> list[np.ndarray]:
        if labels.ndim == 2:
            return [index[p] for p in _multilabel_split(labels[index], None if groups is None else groups[index],
                                                        parts, rng)]
        if groups is not None:
            return [index[p] for p in _group_split(labels[index], groups[index], parts, rng)]
        return [index[p] for p in _cut(_stratified_order(labels[index], rng), parts)]

    everything = np.arange(len(labels))
    if predefined is not None:
        split = {name: np.flatnonzero(predefined == name) for name in SPLITS}
        if len(split["val"]) == 0:
            if len(ratios) == 3:
                share = ratios[1] / (ratios[0] + ratios[1])
                split["train"], split["val"] = divide(split["train"], [1.0 - share, share])
            else:
                split["val"] = split["test"]
        result = split
    elif len(ratios) == 3:
        result = dict(zip(SPLITS, divide(everything, ratios)))
    else:
        train, held_out = divide(everything, ratios)
        result = {"train": train, "val": held_out, "test": held_out}
    if len(ratios) == 2 and (predefined is None or not np.any(predefined == "val")):
        log.warning("data.split has two ratios: the held-out set serves as both validation and test set, "
                    "so test metrics are not independent of model selection")
    for name in ("train", "test"):
        if len(result[name]) == 0:
            raise DataError(f"data.split={ratios}: the {name} split is empty ({len(labels)} images); "
                            "use more images or other ratios")
    return {name: np.sort(idx) for name, idx in result.items()}


def downsample(labels: np.ndarray, seed: int, within: np.ndarray | None = None) -> np.ndarray:
    """Indices keeping every class at the size of the smallest one (per predefined split if `within`)."""
    rng = np.random.default_rng(seed)
    keep = []
    for part in (np.unique(within) if within is not None else [None]):
        pool = np.arange(len(labels)) if part is None else np.flatnonzero(within == part)
        present = np.unique(labels[pool])
        smallest = min(int(np.sum(labels[pool] == c)) for c in present)
        for c in present:
            members = pool[labels[pool] == c]
            keep.append(rng.choice(members, size=smallest, replace=False))
    return np.sort(np.concatenate(keep))


def class_weights(train_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights N / (C * n_c), so a balanced set gets all ones."""
    counts = np.bincount(train_labels, minlength=num_classes).astype(np.float64)
    return len(train_labels) / (num_classes * np.maximum(counts, 1.0))


def ids_hash(ids: Sequence[str]) -> str:
    """sha256 hex of the sorted ids, one per line: proves two runs used the same images."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
