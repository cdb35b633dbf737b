"""What the explanation steps pass around: a streamed batch, the (image, class) target rows a step
explains, and the per-image and per-row arrays gathered on rank 0. Plain data, no Lightning here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Batch:
    images: torch.Tensor  # (B, C, H, W) normalised, on the model's device
    labels: torch.Tensor  # (B,) int64 (multi-class) or (B, K) float32 1 / 0 / NaN (multi-label), CPU
    index: np.ndarray  # (B,) test-set positions
    rows: np.ndarray  # (B,) rows of these images in this rank's per-image arrays (`ExplainedSample.cams`)
    masks: dict[str, torch.Tensor]  # kind -> (B, 1 or K, H, W) uint8, CPU


@dataclass(frozen=True)
class Targets:
    """The (image, class) rows a step explains, in position order, then class order."""

    rows: np.ndarray  # (m,) rows of the images in this rank's per-image arrays
    classes: np.ndarray  # (m,) class or finding explained
    groups: np.ndarray  # (m,) what per-class numbers count the row under: true class, or the finding
    keys: np.ndarray  # (m,) position * K + class: unique over the sample (what `gather` sorts by)


@dataclass(frozen=True)
class TargetBatch:
    """The target rows of one streamed batch of images: image i of the batch once per row."""

    images: torch.Tensor  # (b, C, H, W) on the model's device
    classes: torch.Tensor  # (b,) int64, CPU
    positions: np.ndarray  # (b,) test-set positions
    labels: torch.Tensor  # (b,) or (b, K): the image's labels
    masks: dict[str, torch.Tensor]  # kind -> (b, H, W) uint8: the mask of the row's class (channel k of K, else 0)
    selected: np.ndarray  # (b,) indices into the Targets' rows


@dataclass(frozen=True)
class CamRows:
    """Per-image results of the shared Grad-CAM pass, at feature resolution, ordered by test position."""

    index: np.ndarray  # (n,) test-set positions
    ids: np.ndarray  # (n,) sample ids (str)
    labels: np.ndarray  # (n,) int64 true classes, or (n, K) float32 1 / 0 / NaN findings
    logits: np.ndarray  # (n, C) float32
    maps: np.ndarray  # (n, C, h, w) float32 raw Grad-CAM of every class (before ReLU)
    thumbnails: np.ndarray  # (n, t, t) uint8 grey images, longer side <= 64 px
    masks: dict[str, np.ndarray]  # kind -> (n, h, w), or (n, K, h, w) per finding: share of each cell inside
    multilabel: bool = False  # labels (n, K) 1 / 0 / NaN; sigmoid probabilities

    @property
    def predictions(self) -> np.ndarray:
        """(n,) argmax class, or (n, K) int64 1 where a finding's probability exceeds 0.5 (multi-label)."""
        if self.multilabel:
            return (self.logits > 0).astype(np.int64)
        return self.logits.argmax(axis=1) if len(self.index) else np.empty(0, np.int64)

    @property
    def probabilities(self) -> np.ndarray:
        logits = torch.from_numpy(self.logits).float()
        return (logits.sigmoid() if self.multilabel else logits.softmax(dim=1)).numpy()

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


def targets_of(cams: CamRows, which: str, num_classes: int) -> Targets:
    """The target rows of some images. Multi-class: one per image, explaining its predicted class (`which`
    "prediction") or true class ("label"), counted under its true class. Multi-label: one per positive
    finding of each image (for either `which`), counted under that finding."""
    if cams.multilabel:
        rows, classes = np.nonzero(cams.labels == 1)
        groups = classes
    else:
        rows = np.arange(len(cams.index))
        classes = cams.labels if which == "label" else cams.predictions
        groups = cams.labels
    rows, classes = rows.astype(np.int64), np.asarray(classes, np.int64)
    return Targets(rows, classes, np.asarray(groups, np.int64), cams.index[rows] * num_classes + classes)


@dataclass(frozen=True)
class MapRows:
    """One method's maps of every target row on rank 0, ordered by position then class."""

    index: np.ndarray  # (m,) test-set positions
    ids: np.ndarray  # (m,)
    classes: np.ndarray  # (m,) class or finding explained
    groups: np.ndarray  # (m,) true class or finding
    maps: np.ndarray  # (m, h, w) float32 raw maps (Grad-CAM before ReLU), at most STATS_SIDE a side
    thumbnails: np.ndarray  # (m, t, t) uint8
    masks: dict[str, np.ndarray]  # kind -> (m, h, w) share of each cell inside the row's mask


def mask_of(masks: torch.Tensor, classes: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(b, C, H, W) masks -> (b, H, W): channel k for class k when there is one per class, else channel 0."""
    if masks.shape[1] == num_classes and num_classes > 1:
        return masks[torch.arange(len(masks)), classes]
    return masks[:, 0]
