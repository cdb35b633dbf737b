"""Albumentations pipelines: configured training augmentations, deterministic evaluation, normalisation."""

import inspect
import random
from collections.abc import Mapping, Sequence

import albumentations as A
import numpy as np
from albumentations.pytorch import ToTensorV2

from heatlens.data.errors import DataError


def _tuples(value):
    """Config lists -> tuples: albumentations validates ranges as tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def build_augmentations(augment: Mapping[str, Mapping | None] | None) -> list[A.BasicTransform]:
    """`data.augment`: albumentations class name -> keyword arguments, in order; null disables one."""
    transforms = []
    for name, kwargs in (augment or {}).items():
        if kwargs is None:
            continue
        transform_class = getattr(A, name, None)
        if not isinstance(transform_class, type) or not issubclass(transform_class, A.BasicTransform):
            raise DataError(f"data.augment.{name}: not an albumentations transform")
        if not isinstance(kwargs, Mapping):
            raise DataError(f"data.augment.{name}: expected a mapping of arguments, got {kwargs!r}")
        accepted = set(inspect.signature(transform_class).parameters) - {"self", "args", "kwargs"}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:  # albumentations only warns about these; a typo would silently change nothing
            raise DataError(f"data.augment.{name}: invalid arguments {unknown}; accepted: {sorted(accepted)}")
        try:
            transforms.append(transform_class(**_tuples(dict(kwargs))))
        except (TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
            raise DataError(f"data.augment.{name}: invalid arguments {dict(kwargs)} ({error})") from error
    return transforms


def build_transform(augment: Mapping | None, mean: Sequence[float], std: Sequence[float], train: bool) -> A.Compose:
    """Augmentations (training only) then normalisation by mean / std and HWC uint8 -> CHW float tensor.

    Masks passed as `masks=[...]` follow every geometric transform; evaluation is deterministic.
    """
    steps = build_augmentations(augment) if train else []
    return A.Compose([*steps, A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()])


def seed_transform(transform: A.Compose, seed: np.random.SeedSequence) -> None:
    """Albumentations 2 draws from generators of its own that no global seed reaches. One NumPy and one
    Python generator from `seed`, shared by the whole pipeline: `Compose(seed=...)` would instead give
    every transform its own copy of the same stream, so their random draws would coincide."""
    numpy_seed, python_seed = seed.spawn(2)
    python_state = int.from_bytes(python_seed.generate_state(4, np.uint32).tobytes(), "little")
    transform.set_random_state(np.random.default_rng(numpy_seed), random.Random(python_state))
