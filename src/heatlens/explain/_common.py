"""Shared helpers: model-contract checks, gradient mode inside inference-mode callers, devices."""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from heatlens.explain.errors import ExplainError

CONTRACT = ("features", "head")


def check_model(model: nn.Module, needs: tuple[str, ...] = CONTRACT) -> None:
    """Raise ExplainError unless `model` exposes every attribute in `needs`."""
    missing = [name for name in needs if not hasattr(model, name)]
    if missing:
        raise ExplainError(
            f"model {type(model).__name__} lacks {', '.join(missing)}: explanation code needs the "
            f"model contract features(x) -> (B,K,h,w), head(fmap) -> (B,C) logits, embed(x), feature_layer"
        )


def check_images(images: torch.Tensor, name: str = "images") -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ExplainError(f"{name} must be a float tensor (B, C, H, W), got {shape}")
    if not images.is_floating_point():
        raise ExplainError(f"{name} must be floating point, got dtype {images.dtype}")


def as_targets(targets: torch.Tensor | np.ndarray | list[int] | int, batch: int, num_classes: int | None,
               device: torch.device) -> torch.Tensor:
    """Class indices (B,) int64 on `device`; a single int is broadcast to the batch."""
    if isinstance(targets, int):
        targets = [targets] * batch
    t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    t = t.to(device=device, dtype=torch.long).reshape(-1)
    if t.numel() != batch:
        raise ExplainError(f"targets has {t.numel()} entries for a batch of {batch} images")
    if num_classes is not None and t.numel() and (int(t.min()) < 0 or int(t.max()) >= num_classes):
        raise ExplainError(f"targets must lie in [0, {num_classes}), got values {t.unique().tolist()}")
    return t


@contextmanager
def gradients_enabled() -> Iterator[None]:
    """Gradients even when the caller runs under torch.inference_mode() (Lightning's test loop)."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


def usable(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor autograd accepts: tensors created in inference mode must be cloned outside it."""
    return tensor.clone() if tensor.is_inference() else tensor


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluate in eval mode (batch-norm statistics fixed, no dropout), restoring the caller's mode."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def rng_devices(device: torch.device) -> list[int]:
    """CUDA device ids whose RNG state torch.random.fork_rng must save and restore around seeding."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def default_batch_size(device: torch.device) -> int:
    """Measured: on a 2-core CPU batches of 4-16 in channels_last are fastest; GPUs want large batches."""
    return 256 if device.type == "cuda" else 8


def to_numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().float().cpu().numpy()
    return np.asarray(array)
