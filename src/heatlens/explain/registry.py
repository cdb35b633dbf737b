"""Every explainer of heatlens by name: one call, `explain(name, model, images, targets) -> (B, h, w)`.

Methods and their defaults (options not listed are the underlying library's defaults):
  gradcam               heatlens' one-pass Grad-CAM (all classes from one forward, `cam.gradcam_all_classes`),
                        ReLU'd, at feature resolution (7x7 for a 224 px ResNet)
  gradcam_pp, xgradcam, layercam, hirescam, eigencam, eigengradcam, scorecam
                        pytorch-grad-cam on `model.feature_layer`: ReLU'd, upsampled to the image and min-max
                        scaled per image (scorecam: 32 masked images per forward)
  saliency              captum |d logit / d x|, summed over channels
  smoothgrad            captum NoiseTunnel(Saliency): 25 samples, noise 0.15 of the value range, |.| summed
  integrated_gradients  captum, 64 Gauss-Legendre steps from a zero baseline, |.| summed over channels
  guided_ig, blur_ig    PAIR saliency: 64 steps (guided: fraction 0.25, max_dist 0.02; blur: max_sigma 50)
  xrai, fast_xrai       PAIR XRAI region maps over IG with 64 steps per baseline (fast: top 30 % kept)
Each returns float32 relevance maps on the CPU, one per image, for the class in `targets`; larger is
more relevant. Maps keep their native resolution: steps that compare them with images or masks resize them.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from heatlens.explain import attributions, cam
from heatlens.explain._common import as_targets, check_images, model_device
from heatlens.explain.errors import ExplainError

ExplainFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    family: str  # "cam" (feature-map methods) or "gradient" (input attributions)
    summary: str


def _gradcam(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    out = cam.gradcam_all_classes(model, images)
    ids = as_targets(targets, len(images), out.logits.shape[1], out.maps.device)
    return cam.relu(cam.heatmaps_for(out, ids)).cpu()


# registry name -> pytorch-grad-cam name in cam.library_cam
_LIBRARY = {"gradcam_pp": "gradcam++", "xgradcam": "xgradcam", "layercam": "layercam", "hirescam": "hirescam",
            "eigencam": "eigencam", "eigengradcam": "eigengradcam", "scorecam": "scorecam"}

METHODS: dict[str, Method] = {
    "gradcam": Method("gradcam", "cam", "Grad-CAM, one pass for every class (heatlens)"),
    "gradcam_pp": Method("gradcam_pp", "cam", "Grad-CAM++ (pytorch-grad-cam)"),
    "xgradcam": Method("xgradcam", "cam", "XGrad-CAM (pytorch-grad-cam)"),
    "layercam": Method("layercam", "cam", "LayerCAM (pytorch-grad-cam)"),
    "hirescam": Method("hirescam", "cam", "HiResCAM (pytorch-grad-cam)"),
    "eigencam": Method("eigencam", "cam", "Eigen-CAM, class-agnostic (pytorch-grad-cam)"),
    "eigengradcam": Method("eigengradcam", "cam", "Eigen-Grad-CAM (pytorch-grad-cam)"),
    "scorecam": Method("scorecam", "cam", "Score-CAM, gradient-free (pytorch-grad-cam)"),
    "saliency": Method("saliency", "gradient", "vanilla gradient (captum)"),
    "smoothgrad": Method("smoothgrad", "gradient", "SmoothGrad (captum)"),
    "integrated_gradients": Method("integrated_gradients", "gradient", "Integrated Gradients (captum)"),
    "guided_ig": Method("guided_ig", "gradient", "Guided Integrated Gradients (PAIR saliency)"),
    "blur_ig": Method("blur_ig", "gradient", "Blur Integrated Gradients (PAIR saliency)"),
    "xrai": Method("xrai", "gradient", "XRAI regions over IG (PAIR saliency)"),
    "fast_xrai": Method("fast_xrai", "gradient", "fast XRAI, top 30 % of the image (PAIR saliency)"),
}
NAMES = tuple(METHODS)


def check_methods(names: Sequence[str], where: str = "explain.methods") -> list[str]:
    """The names as a list, or one ExplainError line naming the unknown ones and every valid name."""
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        raise ExplainError(f"{where}: unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                           f"choose from {', '.join(NAMES)}")
    if len(set(names)) != len(names):
        raise ExplainError(f"{where}: {names} names a method twice")
    return names


def explain(name: str, model: nn.Module, images: torch.Tensor, targets: torch.Tensor | list[int] | int,
            seed: int = 0) -> torch.Tensor:
    """(B, h, w) float32 CPU relevance of `targets` for `images` under the named method (module docstring).

    `seed` fixes the noise of the stochastic methods (smoothgrad); the others ignore it.
    """
    check_methods([name], "method")
    check_images(images)
    if name == "gradcam":
        return _gradcam(model, images, targets)
    if name in _LIBRARY:
        return cam.library_cam(_LIBRARY[name], model, images, targets).float()
    ids = as_targets(targets, len(images), None, model_device(model))
    return attributions.to_heatmap(attributions.attribute(name, model, images, ids, seed=seed)).float()


def explainer(name: str, seed: int = 0) -> ExplainFn:
    """The named method as an `(model, images, targets) -> (B, h, w)` function (what sanity tests take)."""
    check_methods([name], "method")

    def run(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return explain(name, model, images, targets, seed=seed)

    run.__name__ = name
    return run
