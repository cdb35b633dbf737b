"""The heatmap steps per method and per finding under DDP: 2 gloo ranks log what 1 process logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from callbacks_helpers import ClassOrderedImages, run_in_group
from explain_models import TinyConvNet
from test_steps_multilabel import FINDINGS, MultiLabelImages
from torch.utils.data import DataLoader, DistributedSampler

from heatlens.callbacks import (
    AopcCallback,
    ExplainedSample,
    Findings,
    HeatmapStatsCallback,
    LocalisationCallback,
    ShortcutCallback,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _findings(rank: int | None, world_size: int) -> dict[str, dict[str, float]]:
    """Every step's metrics (and a few arrays) on the multi-class and the multi-label toy set."""
    out = {}
    for name, dataset, classes, width in (("multiclass", ClassOrderedImages((6, 5, 4)), ["a", "b", "c"], 4),
                                          ("multilabel", MultiLabelImages(), FINDINGS, 8)):
        sampler = None if rank is None else DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                                               shuffle=False)
        torch.manual_seed(0)
        sample = ExplainedSample.from_loader(TinyConvNet(num_classes=3, width=width).eval(),
                                             DataLoader(dataset, batch_size=3, sampler=sampler), classes,
                                             dataset.mask_kinds, None, "first", methods=["gradcam", "saliency"])
        found = Findings()
        for step in (AopcCallback(region_size=4, perturbation="mean", correct_only=False), LocalisationCallback(),
                     ShortcutCallback(), HeatmapStatsCallback()):
            found.update(step.explain(sample))
        if rank in (None, 0):
            stats = found.arrays["explain/methods/saliency/heatmap_stats.npz"]["mean_explained"]
            out[name] = {**found.metrics, "saliency_mean_sum": float(np.nansum(stats))}
    return out


def _on_ranks(rank: int, world_size: int, path: str) -> None:
    found = _findings(rank, world_size)
    if rank == 0:
        Path(path).write_text(json.dumps(found))


def test_two_ranks_log_what_one_process_logs(tmp_path: Path) -> None:
    path = tmp_path / "ranks.json"
    run_in_group(_on_ranks, 2, str(path), timeout_s=300)
    two, one = json.loads(path.read_text()), _findings(None, 1)
    for task in ("multiclass", "multilabel"):
        assert set(two[task]) == set(one[task])
        assert "xai/saliency/aopc/morf" in one[task]
        for name, value in one[task].items():
            assert two[task][name] == pytest.approx(value, rel=1e-5, abs=1e-6, nan_ok=True), (task, name)
