"""The explained test sample on this rank: which images, how to stream them, and the shared Grad-CAM pass.

Built once per test pass by PostFitExplanations and handed to every explanation step (no Lightning here). The sample
(`explain.max_images`, `explain.sample`) depends only on the test set's ids and labels
(heatlens.explain.sampling); each rank explains its own share of it and `gather` collects the
per-image rows on rank 0. Images are streamed batch by batch and never kept: what stays per image is
feature-resolution (Grad-CAM maps, mask shares, a thumbnail) or a few numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader, Dataset, Subset

from heatlens.callbacks.distributed import gather_by_index, owned_indices, rank_and_world, sampler_indices
from heatlens.callbacks.timing import StageTimer
from heatlens.explain import cam
from heatlens.explain.images import mask_shares, thumbnails
from heatlens.explain.sampling import explanation_order
from heatlens.progress import Advance, progress_bar


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor  # (B, C, H, W) normalised, on the model's device
    labels: torch.Tensor  # (B,) int64, CPU
    index: np.ndarray  # (B,) test-set positions
    rows: np.ndarray  # (B,) rows of these images in this rank's per-image arrays (`ExplainedSample.cams`)
    masks: dict[str, torch.Tensor]  # kind -> (B, 1, H, W) uint8, CPU


@dataclass(frozen=True)
class CamRows:
    """Per-image results of the shared Grad-CAM pass, at feature resolution, ordered by test position."""

    index: np.ndarray  # (n,) test-set positions
    ids: np.ndarray  # (n,) sample ids (str)
    labels: np.ndarray  # (n,) int64 true classes
    logits: np.ndarray  # (n, C) float32
    maps: np.ndarray  # (n, C, h, w) float32 raw Grad-CAM of every class (before ReLU)
    thumbnails: np.ndarray  # (n, t, t) uint8 grey images, longer side <= 64 px
    masks: dict[str, np.ndarray]  # kind -> (n, h, w) float32 share of each feature cell inside the mask

    @property
    def predictions(self) -> np.ndarray:
        return self.logits.argmax(axis=1) if len(self.index) else np.empty(0, np.int64)

    @property
    def probabilities(self) -> np.ndarray:
        return torch.from_numpy(self.logits).float().softmax(dim=1).numpy()

    def maps_of(self, classes: np.ndarray) -> np.ndarray:
        """(n, h, w) raw map of one class per image."""
        return self.maps[np.arange(len(self.maps)), classes]

    def predicted_maps(self) -> np.ndarray:
        """(n, h, w) ReLU'd Grad-CAM of each image's predicted class: what the decision rested on."""
        return np.maximum(self.maps_of(self.predictions), 0)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-image arrays under flat names (what `gather_by_index` moves)."""
        return {"labels": self.labels, "logits": self.logits, "maps": self.maps, "thumbnails": self.thumbnails,
                **{f"masks/{kind}": shares for kind, shares in self.masks.items()}}


def _ids_and_labels(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every test sample's id and label, without decoding images when the dataset lists them."""
    ids = getattr(dataset, "ids", None)
    labels = getattr(dataset, "labels", None)
    if labels is None:  # a dataset without a label list: read each item once
        labels = [int(dataset[i]["label"]) for i in range(len(dataset))]
    ids = [str(i) for i in range(len(dataset))] if ids is None else list(map(str, ids))
    return np.asarray(ids), np.asarray(labels, dtype=np.int64)


class ExplainedSample:
    """This rank's share of the explained test images, their per-image results, and how to stream them.

    `positions` are this rank's sample positions (sorted); per-image arrays (`cams`, and the rows a
    step passes to `gather`) follow that order. `order` is the whole sample in explanation order (the
    same on every rank), `ids` every test image's id by position. `gather` and `gathered_cams` are
    collectives: every rank calls them, rank 0 receives the rows of all ranks ordered by position,
    the others None.
    """

    def __init__(self, net: torch.nn.Module, dataset: Dataset, positions: np.ndarray, order: np.ndarray,
                 ids: Sequence[str], class_names: Sequence[str], mask_kinds: Sequence[str], *, batch_size: int = 32,
                 num_workers: int = 0, collate_fn: Callable | None = None,
                 denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None, timer: StageTimer | None = None,
                 show_progress: bool = False, progress_host: Progress | None = None) -> None:
        self.net = net
        self.dataset = dataset
        self.positions = np.asarray(positions, dtype=np.int64)
        self.order = np.asarray(order, dtype=np.int64)
        self.class_names = list(class_names)
        self.mask_kinds = list(mask_kinds)
        self.rank, _ = rank_and_world()
        self.timer = timer or StageTimer()
        self._ids = np.asarray(ids)
        self._loader_options = {"batch_size": batch_size, "num_workers": num_workers, "collate_fn": collate_fn}
        self._denormalize = denormalize
        self._show_progress = show_progress
        self._progress_host = progress_host
        self._cams: CamRows | None = None
        self._gathered_cams: tuple[CamRows | None] | None = None  # a 1-tuple once gathered (None on ranks > 0)

    @classmethod
    def from_loader(cls, net: torch.nn.Module, loader: DataLoader, class_names: Sequence[str],
                    mask_kinds: Sequence[str], max_images: int | None, how: str, **options) -> ExplainedSample:
        """The sample of `loader`'s dataset; this rank's share follows the loader's (distributed) sampler.
        A collective: every rank builds it. `options` are the constructor's keyword options."""
        dataset = loader.dataset
        owned, _ = owned_indices(sampler_indices(loader))
        ids, labels = _ids_and_labels(dataset)
        order = explanation_order(ids, labels, how)
        if max_images is not None:
            order = order[:max_images]
        options = {"batch_size": loader.batch_size or 32, "num_workers": loader.num_workers,
                   "collate_fn": loader.collate_fn} | options
        return cls(net, dataset, np.intersect1d(owned, order), order, ids, class_names, mask_kinds, **options)

    # -- which images ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        parameter = next(self.net.parameters(), None)
        return parameter.device if parameter is not None else torch.device("cpu")

    def first(self, count: int) -> np.ndarray:
        """The first `count` images of the sample's order (the same on every rank), sorted: the
        small samples of the expensive steps, a part of every larger sample."""
        return np.sort(self.order[:count])

    def ids_of(self, index: np.ndarray) -> np.ndarray:
        return self._ids[np.asarray(index, dtype=np.int64)]

    # -- streaming ------------------------------------------------------------------------------
    def progress(self, total: int, description: str) -> AbstractContextManager[Advance]:
        """One Rich bar on rank 0 (a task of Lightning's live display inside `trainer.test`)."""
        return progress_bar(total, description, enabled=self._show_progress, host=self._progress_host)

    def batches(self, description: str, positions: np.ndarray | None = None) -> Iterator[Batch]:
        """This rank's images (or `positions`, which must be among them) batch by batch, in position order."""
        positions = self.positions if positions is None else np.asarray(positions, dtype=np.int64)
        loader = DataLoader(Subset(self.dataset, positions.tolist()), **self._loader_options)
        with self.progress(len(positions), description) as advance:
            for raw in loader:
                index = raw["index"].cpu().numpy()
                yield Batch(images=raw["image"].to(self.device), labels=raw["label"].cpu(), index=index,
                            rows=np.searchsorted(self.positions, index),
                            masks={k: v.cpu() for k, v in (raw.get("masks") or {}).items()})
                advance(len(index))

    def load(self, index: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """A few images at `index` (any rank's), normalised on the model's device, and their labels."""
        items = [self.dataset[int(i)] for i in index]
        images = torch.stack([item["image"] for item in items]).to(self.device)
        return images, np.asarray([int(item["label"]) for item in items], dtype=np.int64)

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] for figures: the datamodule's inverse normalisation, else per-image min-max."""
        if self._denormalize is not None:
            return self._denormalize(images)
        low = images.amin(dim=(1, 2, 3), keepdim=True)
        return (images - low) / (images.amax(dim=(1, 2, 3), keepdim=True) - low + 1e-8)

    def images_at(self, index: Sequence[int]) -> torch.Tensor:
        """(k, C, H, W) images in [0, 1] read from the dataset: the few a figure shows."""
        if not len(index):
            return torch.empty(0)
        return self.denormalize(self.load(np.asarray(index))[0]).cpu()

    # -- the shared Grad-CAM pass ---------------------------------------------------------------
    @property
    def cams(self) -> CamRows:
        """This rank's Grad-CAM rows, computed on first use (timed as the stage `gradcam`)."""
        if self._cams is None:
            with self.timer.stage("gradcam"):
                self._cams = self._gradcam_pass()
        return self._cams

    def _gradcam_pass(self) -> CamRows:
        n = len(self.positions)
        if not n:  # a rank without images: the gather takes the row shapes from the other ranks
            empty = np.empty(0, np.float32)
            return CamRows(self.positions, self.ids_of(self.positions), np.empty(0, np.int64), empty, empty,
                           np.empty(0, np.uint8), {kind: empty for kind in self.mask_kinds})
        labels = np.empty(n, np.int64)
        arrays: dict[str, np.ndarray] = {}
        for batch in self.batches("explain: Grad-CAM"):
            out = cam.gradcam_all_classes(self.net, batch.images)
            size = tuple(out.maps.shape[-2:])
            rows = {"logits": out.logits.cpu().numpy(), "maps": out.maps.cpu().numpy(),
                    "thumbnails": thumbnails(self.denormalize(batch.images))}
            rows |= {f"masks/{kind}": mask_shares(batch.masks[kind], size) for kind in self.mask_kinds}
            for name, values in rows.items():  # preallocated: no list of batches plus its concatenation
                if name not in arrays:
                    arrays[name] = np.empty((n, *values.shape[1:]), values.dtype)
                arrays[name][batch.rows] = values
            labels[batch.rows] = batch.labels.numpy()
        return CamRows(self.positions, self.ids_of(self.positions), labels, arrays["logits"], arrays["maps"],
                       arrays["thumbnails"], {kind: arrays[f"masks/{kind}"] for kind in self.mask_kinds})

    def gathered_cams(self) -> CamRows | None:
        """Every rank's Grad-CAM rows on rank 0 (None elsewhere), ordered by position; gathered once."""
        if self._gathered_cams is None:  # every rank gathers exactly once
            gathered = self.gather(self.cams.arrays())
            self._gathered_cams = (None if gathered is None else CamRows(
                gathered["index"], gathered["ids"], gathered["labels"], gathered["logits"], gathered["maps"],
                gathered["thumbnails"], {kind: gathered[f"masks/{kind}"] for kind in self.mask_kinds}),)
        return self._gathered_cams[0]

    # -- gathering ------------------------------------------------------------------------------
    def gather(self, rows: Mapping[str, np.ndarray | torch.Tensor]) -> dict[str, np.ndarray] | None:
        """Per-image rows (in `positions` order) of every rank on rank 0, ordered by position, with
        `index` and `ids` added; None on the other ranks. A collective."""
        gathered = gather_by_index(self.positions, rows)
        if gathered is not None:
            gathered["ids"] = self.ids_of(gathered["index"])
        return gathered
