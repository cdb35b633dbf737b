"""HeatlensDataModule: any supported dataset, decoded once, split, augmented and batched.

Two seeds: `data.seed` draws the splits (so runs with different training seeds share one test set);
the training seed given to `build_datamodule` fixes the shuffling and every augmentation, per
DataLoader worker and per epoch, with or without persistent workers.
"""

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.fabric.utilities.seed import pl_worker_init_function
from lightning.pytorch import LightningDataModule
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Dataset, get_worker_info

from heatlens.data.cache import CacheInfo, ensure_cache
from heatlens.data.errors import DataError
from heatlens.data.formats import check_phantom, list_samples
from heatlens.data.samples import SPLITS, Listing
from heatlens.data.settings import DataSettings, parse_settings
from heatlens.data.splits import class_weights, downsample, ids_hash, make_splits
from heatlens.data.transforms import build_augmentations, build_transform, seed_transform
from heatlens.paths import cache_dir

log = logging.getLogger(__name__)


class CachedDataset(Dataset):
    """One split's samples read from the decoded cache; items are dicts (`image`, `label`, `index`, `masks`).

    `label`: int64 class index, or (multilabel) float32 (K,) of 1 / 0 / NaN. `masks`: kind -> uint8
    (C, H, W), C = 1 for a shared kind, K for a per-finding one; `mask_sizes` gives C per kind, in the
    order of the cache's channels.
    """

    def __init__(self, cache: CacheInfo, rows: np.ndarray, labels: np.ndarray, ids: list[str],
                 mask_kinds: list[str], transform, mask_sizes: list[int] | None = None) -> None:
        self.cache = cache
        self.rows = rows
        self.labels = labels.astype(np.float32 if labels.ndim == 2 else np.int64)
        self.ids = ids
        self.mask_kinds = mask_kinds
        self.mask_bounds = np.cumsum([0, *(mask_sizes or [1] * len(mask_kinds))])
        self.transform = transform
        self._images: np.ndarray | None = None
        self._masks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        # Each DataLoader worker maps the cache itself instead of receiving a pickled copy of it.
        return {**self.__dict__, "_images": None, "_masks": None}

    def seed_augmentations(self, seed: np.random.SeedSequence) -> None:
        seed_transform(self.transform, seed)

    def __getitem__(self, index: int) -> dict:
        if self._images is None:
            self._images, self._masks = self.cache.images(), self.cache.masks()
        row = self.rows[index]
        image = np.asarray(self._images[row])
        if self.mask_kinds:
            out = self.transform(image=image, masks=list(np.asarray(self._masks[row])))
            channels = torch.as_tensor(np.stack([np.asarray(m) for m in out["masks"]]), dtype=torch.uint8)
            masks = {k: channels[self.mask_bounds[i]:self.mask_bounds[i + 1]] for i, k in enumerate(self.mask_kinds)}
        else:
            out, masks = self.transform(image=image), {}
        return {"image": out["image"], "label": torch.tensor(self.labels[index]),
                "index": torch.tensor(index, dtype=torch.int64), "masks": masks}


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: Lightning's per-worker torch / numpy / random seeding (Lightning adds
    its own only to loaders without one), plus the albumentations pipeline's own generators.

    The worker's torch seed is the loader's base seed (drawn from the loader's seeded generator each
    time workers start) plus the worker id, so every worker and every epoch differs, reproducibly.
    """
    worker_seed = torch.initial_seed()
    pl_worker_init_function(worker_id)
    get_worker_info().dataset.seed_augmentations(np.random.SeedSequence([worker_seed, rank_zero_only.rank]))


class HeatlensDataModule(LightningDataModule):
    """Built from a `data` config; its properties are what callers rely on.

    `seed` (the training seed) fixes the training order and augmentations; `data.seed` the splits.
    """

    def __init__(self, settings: DataSettings, mean: Sequence[float], std: Sequence[float], seed: int = 0) -> None:
        super().__init__()
        if len(mean) != settings.channels or len(std) != settings.channels:
            raise DataError(f"mean={tuple(mean)}, std={tuple(std)}: need {settings.channels} value(s) each "
                            f"to match data.channels={settings.channels}")
        if min(std) <= 0:
            raise DataError(f"std={tuple(std)}: must be positive")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise DataError(f"seed={seed!r}: expected an integer")
        # Checked now, before anything is generated or decoded.
        build_augmentations(settings.augment)
        if settings.format == "phantom":
            check_phantom(settings)
        self.settings = settings
        self.seed = seed
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.channels = settings.channels
        self.image_size = settings.image_size
        self.task = settings.task
        self.class_weights: torch.Tensor | None = None
        self.split_ids: dict[str, list[str]] = {}
        self.test_hash: str | None = None
        self.skipped: list[dict[str, str]] = []
        self._listing: Listing | None = None
        self._datasets: dict[str, CachedDataset] = {}
        self._train_generator: torch.Generator | None = None  # one per DataModule: epochs keep drawing from it

    # -- what the dataset is (listing only: cheap, no decoding) --
    def listing(self) -> Listing:
        if self._listing is None:
            self._listing = list_samples(self.settings)
        return self._listing

    @property
    def class_names(self) -> list[str]:
        return self.listing().class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def mask_kinds(self) -> list[str]:
        return self.listing().mask_kinds

    @property
    def healthy_class(self) -> str | None:
        if self.task == "multilabel":
            return None  # an image without a positive finding is the normal one
        healthy = self.settings.healthy_class
        if healthy is not None and healthy not in self.class_names:
            raise DataError(f"data.healthy_class={healthy!r}: not one of the classes {self.class_names}")
        return healthy

    # -- Lightning hooks --
    def prepare_data(self) -> None:
        self._cache()

    def _cache(self) -> CacheInfo:
        listing = self.listing()
        return ensure_cache(listing.samples, listing.mask_channels(), self.settings.decode_options(),
                            self.settings.on_bad_image, cache_dir() / "decoded", self.settings.build_workers)

    def setup(self, stage: str | None = None) -> None:
        if self._datasets:
            return
        if self.healthy_class is not None:
            log.info("Healthy class: %s", self.healthy_class)  # the property has validated it
        listing = self.listing()
        cache = self._cache()
        self.skipped = listing.skipped + cache.skipped
        by_id = {s.id: s for s in listing.samples}
        samples = [by_id[i] for i in cache.ids]
        rows = np.arange(len(samples))
        if self.task == "multilabel":
            labels = np.array([s.targets for s in samples], dtype=np.float32).reshape(len(samples), -1)
        else:
            class_index = {name: k for k, name in enumerate(listing.class_names)}
            labels = np.array([class_index[s.label] for s in samples], dtype=np.int64)
        groups = np.array([s.group or s.id for s in samples]) if any(s.group for s in samples) else None
        predefined = np.array([s.split or "" for s in samples]) if any(s.split for s in samples) else None
        if self.settings.balance == "downsample":
            keep = downsample(labels, self.settings.seed, within=predefined)
            rows, labels = rows[keep], labels[keep]
            groups = groups[keep] if groups is not None else None
            predefined = predefined[keep] if predefined is not None else None
        parts = make_splits(labels, self.settings.split, self.settings.seed, groups, predefined)
        mask_sizes = [self.num_classes if k in listing.per_finding else 1 for k in listing.mask_kinds]
        for split in SPLITS:
            picked = parts[split]
            ids = [samples[r].id for r in rows[picked]]
            transform = build_transform(self.settings.augment, self.mean, self.std, train=split == "train")
            self._datasets[split] = CachedDataset(cache, rows[picked], labels[picked], ids, listing.mask_kinds,
                                                  transform, mask_sizes)
            self.split_ids[split] = ids
        self.test_hash = ids_hash(self.split_ids["test"])
        if self.settings.balance == "class_weights":
            weights = class_weights(self._datasets["train"].labels, self.num_classes)
            self.class_weights = torch.tensor(weights, dtype=torch.float32)
        log.info("Data %s: %s images (train %d, val %d, test %d), classes %s", self.settings.name, len(rows),
                 *(len(parts[s]) for s in SPLITS), self.class_names)

    def label_matrix(self, split: str) -> np.ndarray:
        """(N, K) float32 labels of a split in dataset order: multilabel 1 / 0 / NaN (unknown), multiclass one-hot."""
        labels = self._dataset(split).labels
        if labels.ndim == 2:
            return labels.copy()
        return np.eye(self.num_classes, dtype=np.float32)[labels]

    def pos_weight(self) -> torch.Tensor | None:
        """BCE positive weight per finding, negatives / positives on train (unknowns excluded), under
        `data.pos_weight: balanced`; None otherwise. A finding without positives on train gets weight 1."""
        if self.task != "multilabel" or self.settings.pos_weight != "balanced":
            return None
        train = self.label_matrix("train")
        positives, negatives = np.sum(train == 1.0, axis=0), np.sum(train == 0.0, axis=0)
        weight = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
        return torch.tensor(weight, dtype=torch.float32)

    def _dataset(self, split: str) -> CachedDataset:
        if not self._datasets:
            self.setup()
        return self._datasets[split]

    @property
    def train_dataset(self) -> CachedDataset:
        return self._dataset("train")

    @property
    def val_dataset(self) -> CachedDataset:
        return self._dataset("val")

    @property
    def test_dataset(self) -> CachedDataset:
        return self._dataset("test")

    def _loader(self, dataset: CachedDataset, train: bool) -> DataLoader:
        workers = self.settings.num_workers
        seeding = {}
        if train:
            if self._train_generator is None:
                self._train_generator = torch.Generator().manual_seed(self.seed)
                # The augmentations' stream in this process (num_workers=0); workers reseed their copies.
                dataset.seed_augmentations(np.random.SeedSequence([self.seed, rank_zero_only.rank]))
            seeding = {"generator": self._train_generator, "worker_init_fn": seed_worker}
        return DataLoader(
            dataset,
            batch_size=self.settings.batch_size,
            shuffle=train,
            # A lone last training sample would break batch norm; evaluation keeps every image.
            drop_last=train and len(dataset) > self.settings.batch_size,
            num_workers=workers,
            persistent_workers=workers > 0 and self.settings.persistent_workers,
            pin_memory=torch.cuda.is_available(),
            **seeding,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, train=False)

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) normalised images -> float in [0, 1]."""
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images * std + mean).clamp(0.0, 1.0)


def build_datamodule(cfg: DictConfig | Mapping, mean: Sequence[float] | None = None,
                     std: Sequence[float] | None = None, seed: int = 0) -> HeatlensDataModule:
    """DataModule for a `data` config (DictConfig or dict, as in conf/data/*.yaml); every key is checked here.

    `mean` / `std` (one value per `data.channels`) default to 0.5, mapping [0, 1] to [-1, 1].
    `seed`: the training seed (cfg.seed), for the training order and augmentations; the splits
    follow `data.seed`, so runs with different training seeds share one test set.
    """
    settings = parse_settings(cfg)
    half = (0.5,) * settings.channels
    return HeatlensDataModule(settings, mean if mean is not None else half, std if std is not None else half, seed)
