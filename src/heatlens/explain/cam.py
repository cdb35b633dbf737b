"""Grad-CAM for every class from one forward pass, plus the other CAMs of pytorch-grad-cam by name.

`gradcam_all_classes` runs the backbone once (no graph kept), then back-propagates each class score
through the head only, down to the feature map: no parameter gradient is ever computed, so it works
the same for frozen and trainable models and costs about one forward pass whatever the class count.
pytorch-grad-cam needs one full forward + backward per class; it stays the reference and the door to
the other CAM variants.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from unittest.mock import patch

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heatlens.explain._common import (
    as_targets,
    check_images,
    check_model,
    eval_mode,
    gradients_enabled,
    model_device,
    usable,
)
from heatlens.explain.errors import ExplainError

# pytorch-grad-cam's min-max epsilon, kept identical so normalised maps agree to float precision.
NORMALIZE_EPS = 1e-7


@dataclass(frozen=True)
class CamOutput:
    maps: torch.Tensor  # (B, C, h, w) float32 raw Grad-CAM, before ReLU, at feature resolution
    logits: torch.Tensor  # (B, C) float32


def gradcam_all_classes(model: nn.Module, images: torch.Tensor) -> CamOutput:
    """Raw Grad-CAM maps sum_k alpha_k^c A_k for every class c, from a single forward pass.

    alpha_k^c is the spatial mean of d score_c / d A_k (score = logit). Works under
    torch.inference_mode() callers and under autocast (maps are returned in float32).
    """
    check_model(model)
    check_images(images)
    with eval_mode(model), gradients_enabled():
        with torch.inference_mode():
            fmap = model.features(images.to(model_device(model)))
        fmap = fmap.clone().requires_grad_(True)  # a normal tensor: autograd starts here, not at the input
        logits = model.head(fmap)
        if logits.ndim != 2:
            raise ExplainError(f"model.head must return logits (B, C), got shape {tuple(logits.shape)}")
        # Images are independent in eval mode, so the gradient of the batch-summed score of class c
        # w.r.t. the map is each image's own gradient. C backward passes through the (cheap) head only.
        class_scores = logits.sum(dim=0)
        num_classes = class_scores.numel()
        grads = [
            torch.autograd.grad(class_scores[c], fmap, retain_graph=c < num_classes - 1)[0]
            for c in range(num_classes)
        ]
    with torch.autocast(fmap.device.type, enabled=False):  # combine in float32 whatever the caller's autocast
        weights = torch.stack([g.float().mean(dim=(2, 3)) for g in grads], dim=1)  # (B, C, K)
        maps = torch.einsum("bck,bkhw->bchw", weights, fmap.detach().float())
    return CamOutput(maps=maps, logits=logits.detach().float())


def relu(maps: torch.Tensor) -> torch.Tensor:
    """Keep the positive evidence (Grad-CAM's ReLU)."""
    return maps.clamp_min(0)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (B, C, h, w) or (B, h, w) maps to `size` (same convention as cv2.resize)."""
    if maps.ndim not in (3, 4):
        raise ExplainError(f"maps must be (B, h, w) or (B, C, h, w), got shape {tuple(maps.shape)}")
    squeeze = maps.ndim == 3
    x = maps.unsqueeze(1) if squeeze else maps
    out = F.interpolate(x.float(), size=tuple(size), mode="bilinear", align_corners=False)
    return out.squeeze(1) if squeeze else out


def normalize_per_image(maps: torch.Tensor, eps: float = NORMALIZE_EPS) -> torch.Tensor:
    """Min-max scale each map (last two dims) to [0, 1]; a constant map becomes all zeros."""
    low = maps.amin(dim=(-2, -1), keepdim=True)
    shifted = maps - low
    return shifted / (shifted.amax(dim=(-2, -1), keepdim=True) + eps)


def heatmaps_for(out: CamOutput, targets: torch.Tensor) -> torch.Tensor:
    """The raw map of one class per image: (B, h, w)."""
    index = targets.to(out.maps.device).long().view(-1, 1, 1, 1).expand(-1, 1, *out.maps.shape[-2:])
    return out.maps.gather(1, index).squeeze(1)


def _library_methods() -> dict[str, type]:
    import pytorch_grad_cam as pgc

    return {
        "gradcam": pgc.GradCAM,
        "gradcam++": pgc.GradCAMPlusPlus,
        "xgradcam": pgc.XGradCAM,
        "layercam": pgc.LayerCAM,
        "hirescam": pgc.HiResCAM,
        "eigencam": pgc.EigenCAM,
        "eigengradcam": pgc.EigenGradCAM,
        "scorecam": pgc.ScoreCAM,
    }


LIBRARY_METHODS = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam", "eigengradcam",
                   "scorecam")


@contextmanager
def _no_library_bars() -> Iterator[None]:
    """ScoreCAM draws a tqdm bar for every batch of images (hundreds of console lines per step) and
    pytorch-grad-cam has no switch for it; heatlens' own progress line already covers the step."""
    from pytorch_grad_cam import score_cam

    with patch.object(score_cam, "tqdm", SimpleNamespace(tqdm=lambda iterable, *args, **kwargs: iterable)):
        yield


def library_cam(method: str, model: nn.Module, images: torch.Tensor,
                targets: torch.Tensor | list[int] | int) -> torch.Tensor:
    """A pytorch-grad-cam method on `model.feature_layer`: (B, H, W) in [0, 1] (ReLU, upsampled, min-max).

    Frozen models are handled: the input requires grad, so the hooked activation records a gradient
    even when no parameter does (pytorch-grad-cam silently returns garbage otherwise). Parameter
    `.grad` fields are restored afterwards. Runs in float32 (the library converts to numpy).
    """
    methods = _library_methods()
    key = method.lower()
    if key not in methods:
        raise ExplainError(f"unknown CAM method {method!r}; choose one of {', '.join(LIBRARY_METHODS)}")
    check_model(model, ("feature_layer",))
    check_images(images)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    device = model_device(model)
    with eval_mode(model), torch.no_grad():  # class count, so a bad target is named, not an IndexError
        num_classes = model(usable(images[:1]).float().to(device)).shape[-1]
    target_ids = as_targets(targets, images.shape[0], num_classes, device).tolist()
    saved_grads = [p.grad for p in model.parameters()]
    was_training = model.training
    try:
        with gradients_enabled(), torch.autocast(device.type, enabled=False):
            x = usable(images).detach().float().to(device).requires_grad_(True)
            with methods[key](model=model, target_layers=[model.feature_layer]) as explainer, _no_library_bars():
                if key == "scorecam":
                    explainer.batch_size = 32
                result = explainer(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in target_ids])
    finally:
        for param, grad in zip(model.parameters(), saved_grads):
            param.grad = grad
        model.train(was_training)
    return torch.from_numpy(np.ascontiguousarray(result))
