"""Explanation benchmarks, each measured side by side in one run on the same model and data.

gradcam_vs_forward           all-class Grad-CAM throughput / plain eval forward throughput (same batch)
gradcam_vs_pytorch_grad_cam  pytorch-grad-cam GradCAM called once per class / our all-class Grad-CAM
aopc_vs_forward              perturbation-curve throughput over the (L+1)*N images / the best plain
                             forward throughput (batch sizes and memory formats tried) on as many images
tsne_vs_sklearn              scikit-learn TSNE time / openTSNE time, same perplexity and iterations

Model: timm resnet18 (pretrained=False) at 224 px, 4 classes. The device is picked automatically
(CUDA when available) and CUDA is synchronised around every timed call.
"""

import time
from collections.abc import Callable

import numpy as np
import timm
import torch
from torch import nn

from heatlens.bench.common import BenchResult, best_time
from heatlens.explain import cam, embeddings, perturbation
from heatlens.explain._common import default_batch_size

NUM_CLASSES = 4


class SlicedTimm(nn.Module):
    """A timm classifier exposing the model contract (features / head / feature_layer)."""

    def __init__(self, name: str = "resnet18"):
        super().__init__()
        self.backbone = timm.create_model(name, pretrained=False, num_classes=NUM_CLASSES)
        self.feature_layer = self.backbone.layer4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def head(self, fmap: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_head(fmap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _timer(device: torch.device) -> Callable[..., float]:
    def timed(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
        def synced() -> None:
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()

        return best_time(synced, repeats=repeats, warmup=warmup)

    return timed


def _gradcam(model: nn.Module, device: torch.device, quick: bool) -> list[BenchResult]:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    timed = _timer(device)
    size = 128 if quick else 224
    batch = 4 if quick else (64 if device.type == "cuda" else 8)
    x = torch.randn(batch, 3, size, size, device=device)

    def forward() -> None:
        with torch.inference_mode():
            model(x)

    def library_per_class() -> None:
        with GradCAM(model=model, target_layers=[model.feature_layer]) as reference:
            for c in range(NUM_CLASSES):
                reference(input_tensor=x, targets=[ClassifierOutputTarget(c)] * batch)

    t_forward = timed(forward)
    t_ours = timed(lambda: cam.gradcam_all_classes(model, x))
    t_library = timed(library_per_class, repeats=1 if quick else 2)
    model.zero_grad(set_to_none=True)
    setting = f"{device.type}, resnet18 {size}px, batch {batch}, {NUM_CLASSES} classes"
    return [
        BenchResult("gradcam_vs_forward", t_forward / t_ours, f"{batch / t_ours:.1f} img/s all classes",
                    f"{batch / t_forward:.1f} img/s forward", setting),
        BenchResult("gradcam_vs_pytorch_grad_cam", t_library / t_ours, f"{t_ours * 1e3:.0f} ms / batch",
                    f"{t_library * 1e3:.0f} ms / batch ({NUM_CLASSES} calls)", setting),
    ]


def _aopc(model: nn.Module, device: torch.device, quick: bool) -> list[BenchResult]:
    timed = _timer(device)
    size, region = (128, 32) if quick else (224, 56)
    num_images = 2 if quick else (64 if device.type == "cuda" else 4)
    x = torch.randn(num_images, 3, size, size, device=device)
    heat = torch.rand(num_images, 7, 7, device=device)
    steps = (size // region) ** 2
    total = num_images * (steps + 1)
    batch = default_batch_size(device)
    t_ours = timed(lambda: perturbation.perturbation_curves(model, x, heat, 0, region_size=region), repeats=2)

    flat = x.repeat_interleave(steps + 1, dim=0)
    candidates = (64, 128, 256) if device.type == "cuda" else (4, 8, 16)
    best = (float("inf"), 0, "")
    for size_b in candidates:
        for fmt in (torch.contiguous_format, torch.channels_last):
            chunks = [c.contiguous(memory_format=fmt) for c in flat.split(size_b)]

            def forward() -> None:
                with torch.inference_mode():
                    for chunk in chunks:
                        model(chunk)

            # one timed pass per setting, CPU model already warm: six settings fit the time budget
            t = timed(forward, repeats=1, warmup=0 if device.type == "cpu" else 1)
            best = min(best, (t, size_b, "channels_last" if fmt is torch.channels_last else "NCHW"))
    t_forward, best_batch, best_format = best
    setting = (f"{device.type}, resnet18 {size}px, {num_images} images x {steps + 1} steps, region {region}px, "
               f"batch {batch}")
    return [BenchResult("aopc_vs_forward", t_forward / t_ours, f"{total / t_ours:.1f} img/s",
                        f"{total / t_forward:.1f} img/s (best: batch {best_batch}, {best_format})", setting)]


def _tsne(quick: bool) -> list[BenchResult]:
    from sklearn.manifold import TSNE

    n, dims = (2_000, 256) if quick else (10_000, 1_024)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    x = (rng.normal(size=(10, dims))[labels] * 0.5 + rng.normal(size=(n, dims))).astype(np.float32)
    # scikit-learn always runs 250 exaggerated iterations; 100 more keeps the run inside the bench budget.
    perplexity, early, later = 30.0, 250, 100

    start = time.perf_counter()
    embeddings.tsne_2d(x, seed=0, perplexity=perplexity, n_iter=later, early_exaggeration_iter=early)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    TSNE(n_components=2, perplexity=perplexity, max_iter=early + later, init="pca", learning_rate="auto",
         random_state=0, n_jobs=1).fit_transform(x)
    t_sklearn = time.perf_counter() - start
    setting = f"{n} x {dims}, perplexity {perplexity:.0f}, {early}+{later} iterations, n_jobs 1, one run each"
    return [BenchResult("tsne_vs_sklearn", t_sklearn / t_ours, f"{t_ours:.1f} s openTSNE",
                        f"{t_sklearn:.1f} s scikit-learn", setting)]


def run(quick: bool) -> list[BenchResult]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = SlicedTimm().to(device).eval()
    return [*_gradcam(model, device, quick), *_aopc(model, device, quick), *_tsne(quick)]
