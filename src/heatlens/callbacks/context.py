"""What the explanation callbacks of one test pass share: the model, this rank's share of the test
set, one Grad-CAM pass (cached at feature resolution), timings and the MLflow run."""

from __future__ import annotations

import time
import weakref
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from heatlens.callbacks.distributed import gather_by_index, owned_indices, rank_and_world, sampler_indices
from heatlens.explain import cam
from heatlens.tracking import RunHandle


@dataclass
class Batch:
    images: torch.Tensor  # (B, C, H, W) normalised, on the model's device
    labels: torch.Tensor  # (B,) int64, CPU
    index: np.ndarray  # (B,) dataset positions
    masks: dict[str, torch.Tensor]  # kind -> (B, 1, H, W) uint8, CPU


class StageTimer:
    """Wall time per named stage, exclusive: a nested stage's time is not counted in its parent."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._open: list[list] = []  # [name, start of the current slice]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        now = time.perf_counter()
        if self._open:
            parent = self._open[-1]
            self.totals[parent[0]] += now - parent[1]
        self._open.append([name, now])
        try:
            yield
        finally:
            end = time.perf_counter()
            finished = self._open.pop()
            self.totals[finished[0]] += end - finished[1]
            if self._open:
                self._open[-1][1] = end


class ExplainContext:
    """Built once per test pass by the first explanation callback (a collective: all ranks build it)."""

    def __init__(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.trainer = trainer
        self.net = pl_module.net
        self.device = pl_module.device
        self.class_names = list(pl_module.class_names)
        loaders = trainer.test_dataloaders
        self.loader: DataLoader = loaders[0] if isinstance(loaders, Sequence) else loaders
        self.dataset = self.loader.dataset
        self.owned, self.all_indices = owned_indices(sampler_indices(self.loader))
        self.rank, self.world_size = rank_and_world()
        self.timer = StageTimer()
        self.show_progress = self.rank == 0 and trainer.progress_bar_callback is not None
        self._cams: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
        self._gathered: dict[int | None, dict[str, np.ndarray] | None] = {}
        self._run: RunHandle | None = None

    # -- which samples --------------------------------------------------------------------------
    def selected(self, max_images: int | None) -> np.ndarray:
        """The explained subset of the test set, the same for any number of ranks (first positions)."""
        return self.all_indices if max_images is None else self.all_indices[:max_images]

    def mine(self, max_images: int | None) -> np.ndarray:
        """This rank's disjoint share of `selected(max_images)`."""
        return np.intersect1d(self.owned, self.selected(max_images))

    @property
    def mask_kinds(self) -> list[str]:
        datamodule = getattr(self.trainer, "datamodule", None)
        kinds = getattr(datamodule, "mask_kinds", None)
        return list(kinds if kinds is not None else getattr(self.dataset, "mask_kinds", []))

    # -- data -----------------------------------------------------------------------------------
    def batches(self, indices: np.ndarray, desc: str) -> Iterator[Batch]:
        """The samples at `indices` in the test loader's batch size, with a progress bar on rank 0."""
        loader = DataLoader(Subset(self.dataset, indices.tolist()), batch_size=self.loader.batch_size or 32,
                            num_workers=self.loader.num_workers, collate_fn=self.loader.collate_fn)
        with tqdm(total=len(indices), desc=desc, unit="img", disable=not self.show_progress, leave=False) as bar:
            for raw in loader:
                yield Batch(
                    images=raw["image"].to(self.device),
                    labels=raw["label"].cpu(),
                    index=raw["index"].cpu().numpy(),
                    masks={k: v.cpu() for k, v in (raw.get("masks") or {}).items()},
                )
                bar.update(len(raw["label"]))

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for figures: the datamodule's inverse normalisation, else per-image min-max."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "denormalize"):
            return datamodule.denormalize(images)
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        return (images - low) / (images.amax(dim=(1, 2, 3), keepdim=True) - low + 1e-8)

    def images_at(self, indices: Sequence[int]) -> torch.Tensor:
        """(n, C, H, W) images in [0, 1] read straight from the dataset (rank 0's figures)."""
        if not len(indices):
            return torch.empty(0)
        images = torch.stack([self.dataset[int(i)]["image"] for i in indices])
        return self.denormalize(images).cpu()

    def ids(self, index: np.ndarray) -> np.ndarray:
        names = getattr(self.dataset, "ids", None)
        return np.asarray([str(names[i]) if names is not None else str(i) for i in index])

    # -- Grad-CAM, once per sample --------------------------------------------------------------
    def cams(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw Grad-CAM maps (n, C, h, w) float32, logits (n, C) and labels (n,) for this rank's `indices`."""
        missing = np.setdiff1d(indices, np.fromiter(self._cams, dtype=np.int64, count=len(self._cams)))
        if len(missing):
            with self.timer.stage("gradcam"):
                for batch in self.batches(missing, "explain: Grad-CAM"):
                    out = cam.gradcam_all_classes(self.net, batch.images)
                    maps, logits = out.maps.cpu().numpy(), out.logits.cpu().numpy()
                    for row, position in enumerate(batch.index):
                        self._cams[int(position)] = (maps[row], logits[row], int(batch.labels[row]))
        rows = [self._cams[int(i)] for i in indices]
        if not rows:  # a rank without sample: the gather takes the row shapes from the other ranks
            return np.empty((0,), np.float32), np.empty((0,), np.float32), np.empty(0, np.int64)
        maps, logits, labels = zip(*rows)
        return np.stack(maps), np.stack(logits), np.asarray(labels, dtype=np.int64)

    def gathered_cams(self, max_images: int | None) -> dict[str, np.ndarray] | None:
        """Every rank's Grad-CAM rows of `selected(max_images)` on rank 0 (None elsewhere), by index."""
        if max_images not in self._gathered:
            mine = self.mine(max_images)
            maps, logits, labels = self.cams(mine)
            self._gathered[max_images] = gather_by_index(mine, {"maps": maps, "logits": logits, "labels": labels})
        return self._gathered[max_images]

    # -- logging (rank 0) -----------------------------------------------------------------------
    @property
    def run(self) -> RunHandle:
        if self._run is None:
            self._run = RunHandle.from_trainer(self.trainer)
        return self._run

    def log_timings(self) -> None:
        if self.rank == 0 and self.timer.totals:
            self.run.log_metrics({f"time/{name}_s": seconds for name, seconds in self.timer.totals.items()})


_contexts: weakref.WeakKeyDictionary[L.Trainer, ExplainContext] = weakref.WeakKeyDictionary()


def context_for(trainer: L.Trainer, pl_module: L.LightningModule) -> ExplainContext:
    """The test pass's shared context, built on first use."""
    if trainer not in _contexts:
        _contexts[trainer] = ExplainContext(trainer, pl_module)
    return _contexts[trainer]


def drop_context(trainer: L.Trainer) -> None:
    _contexts.pop(trainer, None)
