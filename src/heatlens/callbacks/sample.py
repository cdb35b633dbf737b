"""The explained test sample on this rank: which images, how to stream them, and the shared Grad-CAM pass.

Built once per test pass by PostFitExplanations and handed to every explanation step (no Lightning here). The sample
(`explain.max_images`, `explain.sample`) depends only on the test set's ids and labels
(heatlens.explain.sampling); each rank explains its own share of it and `gather` collects the
per-image rows on rank 0. Images are streamed batch by batch and never kept: what stays per image is
feature-resolution (Grad-CAM maps, mask shares, a thumbnail) or a few numbers.

What a step explains is a list of target rows, (image, class) pairs (`Targets`): one per image in a
multi-class task (its predicted or true class), one per positive finding in a multi-label task. The maps
of every method of `explain.methods` are computed once per target row and shared between steps
(`method_maps`); Grad-CAM's come from the shared pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch.utils.data import DataLoader, Dataset, Subset

from heatlens.callbacks.distributed import gather_by_index, owned_indices, rank_and_world, sampler_indices
from heatlens.callbacks.rows import Batch, CamRows, MapRows, TargetBatch, Targets, mask_of, targets_of
from heatlens.callbacks.timing import StageTimer
from heatlens.explain import cam, registry
from heatlens.explain.images import mask_shares, thumbnails
from heatlens.explain.sampling import explanation_order, strata
from heatlens.progress import Advance, progress_bar


STATS_SIDE = 32  # full-resolution maps are area-pooled to at most this side for statistics and the audit


def _pooled(maps: np.ndarray) -> np.ndarray:
    side = (min(maps.shape[-2], STATS_SIDE), min(maps.shape[-1], STATS_SIDE))
    if tuple(maps.shape[-2:]) == side or not len(maps):
        return maps
    return F.adaptive_avg_pool2d(torch.from_numpy(maps)[:, None], side)[:, 0].numpy()


def _ids_and_labels(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every test sample's id and label ((N,) int64, or (N, K) float32 multi-label), without decoding
    images when the dataset lists them."""
    ids = getattr(dataset, "ids", None)
    labels = getattr(dataset, "labels", None)
    if labels is None:  # a dataset without a label list: read each item once
        labels = [np.asarray(dataset[i]["label"]) for i in range(len(dataset))]
    ids = [str(i) for i in range(len(dataset))] if ids is None else list(map(str, ids))
    labels = np.asarray(labels)
    return np.asarray(ids), labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int64)


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
                 show_progress: bool = False, progress_host: Progress | None = None,
                 methods: Sequence[str] = ("gradcam",), seed: int = 0, multilabel: bool | None = None) -> None:
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
        self.methods = registry.check_methods(list(methods))
        self.seed = seed  # of the stochastic explainers (SmoothGrad)
        self._multilabel = multilabel  # None: read from the dataset's labels when first needed
        self._cams: CamRows | None = None
        self._gathered_cams: tuple[CamRows | None] | None = None  # a 1-tuple once gathered (None on ranks > 0)
        self._targets: dict[str, Targets] = {}
        self._method_maps: dict[tuple[str, str], np.ndarray] = {}
        self._method_shares: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    @classmethod
    def from_loader(cls, net: torch.nn.Module, loader: DataLoader, class_names: Sequence[str],
                    mask_kinds: Sequence[str], max_images: int | None, how: str, **options) -> ExplainedSample:
        """The sample of `loader`'s dataset; this rank's share follows the loader's (distributed) sampler.
        A collective: every rank builds it. `options` are the constructor's keyword options."""
        dataset = loader.dataset
        owned, _ = owned_indices(sampler_indices(loader))
        ids, labels = _ids_and_labels(dataset)
        order = explanation_order(ids, strata(labels), how)
        if max_images is not None:
            order = order[:max_images]
        options = {"batch_size": loader.batch_size or 32, "num_workers": loader.num_workers,
                   "collate_fn": loader.collate_fn} | options
        options.setdefault("multilabel", labels.ndim == 2)
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

    @property
    def multilabel(self) -> bool:
        """Multi-label task: labels (K,) per image, one sigmoid per finding."""
        if self._multilabel is None:
            self._multilabel = _ids_and_labels(self.dataset)[1].ndim == 2
        return self._multilabel

    @property
    def step_methods(self) -> list[str]:
        """Grad-CAM (always: today's names), then every other chosen method."""
        return ["gradcam", *(m for m in self.methods if m != "gradcam")]

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

    def target_batches(self, targets: Targets, description: str) -> Iterator[TargetBatch]:
        """The target rows batch by batch of streamed images, each image repeated once per row (a batch
        without rows, e.g. of images without a finding, is skipped)."""
        num_classes = len(self.class_names)
        for batch in self.batches(description):
            selected = np.flatnonzero(np.isin(targets.rows, batch.rows))
            if not len(selected):
                continue
            local = np.searchsorted(batch.rows, targets.rows[selected])  # batch.rows ascends with positions
            classes = torch.from_numpy(targets.classes[selected])
            take = torch.from_numpy(local)
            yield TargetBatch(images=batch.images[take.to(batch.images.device)], classes=classes,
                              positions=batch.index[local], labels=batch.labels[take],
                              masks={k: mask_of(m[take], classes, num_classes) for k, m in batch.masks.items()},
                              selected=selected)

    def load(self, index: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """A few images at `index` (any rank's), normalised on the model's device, and their labels."""
        items = [self.dataset[int(i)] for i in index]
        images = torch.stack([item["image"] for item in items]).to(self.device)
        labels = np.stack([np.asarray(item["label"]) for item in items])
        return images, labels.astype(np.float32) if labels.ndim == 2 else labels.astype(np.int64)

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
            labels = (np.empty((0, len(self.class_names)), np.float32) if self.multilabel
                      else np.empty(0, np.int64))
            return CamRows(self.positions, self.ids_of(self.positions), labels, empty, empty, np.empty(0, np.uint8),
                           {kind: empty for kind in self.mask_kinds}, multilabel=self.multilabel)
        labels: np.ndarray | None = None
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
            if labels is None:
                labels = np.empty((n, *batch.labels.shape[1:]), batch.labels.numpy().dtype)
            labels[batch.rows] = batch.labels.numpy()
        return CamRows(self.positions, self.ids_of(self.positions), labels, arrays["logits"], arrays["maps"],
                       arrays["thumbnails"], {kind: arrays[f"masks/{kind}"] for kind in self.mask_kinds},
                       multilabel=self.multilabel)

    def gathered_cams(self) -> CamRows | None:
        """Every rank's Grad-CAM rows on rank 0 (None elsewhere), ordered by position; gathered once."""
        if self._gathered_cams is None:  # every rank gathers exactly once
            gathered = self.gather(self.cams.arrays())
            self._gathered_cams = (None if gathered is None else CamRows(
                gathered["index"], gathered["ids"], gathered["labels"], gathered["logits"], gathered["maps"],
                gathered["thumbnails"], {kind: gathered[f"masks/{kind}"] for kind in self.mask_kinds},
                multilabel=self.multilabel),)
        return self._gathered_cams[0]

    # -- what is explained, and every method's maps of it ---------------------------------------
    def targets(self, which: str = "prediction") -> Targets:
        """This rank's target rows (`targets_of` its Grad-CAM rows)."""
        which = "label" if self.multilabel else which  # one row per positive finding either way
        if which not in self._targets:
            self._targets[which] = targets_of(self.cams, which, len(self.class_names))
        return self._targets[which]

    def method_maps(self, method: str, which: str = "prediction") -> np.ndarray:
        """(m, h, w) float32 maps of `targets(which)` under `method`, at the method's own resolution,
        computed once per sample. Grad-CAM's are the shared pass's raw maps (before ReLU)."""
        key = (method, "label" if self.multilabel else which)
        if key not in self._method_maps:
            targets = self.targets(which)
            if method == "gradcam":
                self._method_maps[key] = self.cams.maps[targets.rows, targets.classes] if len(targets.rows) \
                    else np.empty((0, 1, 1), np.float32)
            else:
                with self.timer.stage(f"maps_{method}"):
                    self._method_maps[key], self._method_shares[key] = self._explain_targets(method, targets)
        return self._method_maps[key]

    def _explain_targets(self, method: str, targets: Targets) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The maps of every target row, and each row's mask shares on the pooled map grid."""
        maps: np.ndarray | None = None
        shares: dict[str, np.ndarray] = {}
        for part in self.target_batches(targets, f"explain: {method} maps"):
            values = registry.explain(method, self.net, part.images, part.classes, seed=self.seed).numpy()
            if maps is None:
                maps = np.empty((len(targets.rows), *values.shape[1:]), np.float32)
            maps[part.selected] = values
            size = _pooled(values[:1]).shape[-2:]
            for kind, masks in part.masks.items():
                shares.setdefault(kind, np.empty((len(targets.rows), *size), np.float32))
                shares[kind][part.selected] = mask_shares(masks, size)
        if maps is None:
            return np.empty((0, 1, 1), np.float32), {kind: np.empty((0, 1, 1), np.float32) for kind in self.mask_kinds}
        return maps, shares

    def gathered_maps(self, method: str, which: str = "prediction") -> MapRows | None:
        """Every rank's maps of `method` for `targets(which)` on rank 0 (None elsewhere). A collective.
        Grad-CAM's come from `gathered_cams` (no further gather)."""
        if method == "gradcam":
            cams = self.gathered_cams()
            if cams is None:
                return None
            targets = targets_of(cams, which, len(self.class_names))
            masks = {kind: shares[targets.rows, targets.classes] if shares.ndim == 4 else shares[targets.rows]
                     for kind, shares in cams.masks.items()}
            return MapRows(cams.index[targets.rows], cams.ids[targets.rows], targets.classes, targets.groups,
                           cams.maps[targets.rows, targets.classes], cams.thumbnails[targets.rows], masks)
        targets = self.targets(which)
        maps = _pooled(self.method_maps(method, which))
        shares = self._method_shares[(method, "label" if self.multilabel else which)]
        gathered = self.gather_targets(targets, {"maps": maps, "thumbnails": self.cams.thumbnails[targets.rows],
                                                 **{f"masks/{kind}": v for kind, v in shares.items()}})
        if gathered is None:
            return None
        return MapRows(gathered["index"], gathered["ids"], gathered["classes"], gathered["groups"], gathered["maps"],
                       gathered["thumbnails"], {kind: gathered[f"masks/{kind}"] for kind in shares})

    def gather_targets(self, targets: Targets, rows: Mapping[str, np.ndarray | torch.Tensor]
                       ) -> dict[str, np.ndarray] | None:
        """Per-target rows of every rank on rank 0 (None elsewhere), in position then class order, with
        `index` (positions), `ids`, `classes` and `groups` added. A collective."""
        rows = {"classes": targets.classes, "groups": targets.groups, **rows}
        gathered = gather_by_index(targets.keys, rows)
        if gathered is not None:
            gathered["index"] = gathered["index"] // len(self.class_names)
            gathered["ids"] = self.ids_of(gathered["index"])
        return gathered

    # -- gathering ------------------------------------------------------------------------------
    def gather(self, rows: Mapping[str, np.ndarray | torch.Tensor]) -> dict[str, np.ndarray] | None:
        """Per-image rows (in `positions` order) of every rank on rank 0, ordered by position, with
        `index` and `ids` added; None on the other ranks. A collective."""
        gathered = gather_by_index(self.positions, rows)
        if gathered is not None:
            gathered["ids"] = self.ids_of(gathered["index"])
        return gathered
