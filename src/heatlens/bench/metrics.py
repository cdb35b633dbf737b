"""Explanation-metric benchmarks, measured side by side in one run on the same model and images.

road_vs_forward                  ROAD MoRF (9 removal percentages, noisy linear imputation) throughput
                                 over the 9*N imputed images / plain forward throughput on as many images
road_vs_pytorch_grad_cam         pytorch-grad-cam ROADMostRelevantFirstAverage time / ours
insertion_deletion_vs_forward    insertion + deletion curves (2*(steps+1)*N images) / plain forward
insertion_deletion_vs_quantus    Quantus PixelFlipping run for deletion and for insertion, same number
                                 of steps (forwards) / ours

Model: timm resnet18 (pretrained=False), 4 classes; 224 px on CUDA, 112 px on the CPU (the reference
ROAD solves one sparse system per image and percentage on the CPU and would take minutes at 224 px).
resnet18 is the smallest of the realistic backbones (the presets are resnet50 to densenet201): the
`*_vs_forward` ratios are the fraction of a forward's cost the metric adds, so the cheapest realistic
forward is the hardest case. The maps are random 7x7 grids upsampled bilinearly: removal regions of a
7x7 CAM's shape, which is what sets the imputation's iteration count (not the weights or pixel values).
Both contenders get the same images, maps, batch size (default_batch_size) and device.
"""

import numpy as np
import torch
from torch import nn

from heatlens.bench.common import BenchResult
from heatlens.bench.explain import SlicedTimm, _interleaved, _where
from heatlens.explain._common import default_batch_size
from heatlens.explain.metrics import road_morf
from heatlens.explain.metrics.faithfulness import ROAD_PERCENTAGES, deletion_curves, insertion_curves


def _forward(model: nn.Module, images: torch.Tensor, batch: int) -> None:
    with torch.inference_mode():
        for chunk in images.split(batch):
            model(chunk.contiguous(memory_format=torch.channels_last))


def _road(model: nn.Module, x: torch.Tensor, heat: torch.Tensor, device: torch.device, rounds: int,
          setting: str) -> list[BenchResult]:
    from pytorch_grad_cam.metrics.road import ROADMostRelevantFirstAverage
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    batch = default_batch_size(device)
    targets = torch.zeros(len(x), dtype=torch.long)
    flat = x.repeat_interleave(len(ROAD_PERCENTAGES), dim=0)
    full = torch.nn.functional.interpolate(heat[:, None], size=x.shape[-2:], mode="bilinear")[:, 0].cpu().numpy()
    reference = ROADMostRelevantFirstAverage(list(100 - p for p in ROAD_PERCENTAGES))
    t = _interleaved(device, {
        "forward": lambda: _forward(model, flat, batch),
        "ours": lambda: road_morf(model, x, targets, heat),
        "library": lambda: reference(x, full, [ClassifierOutputSoftmaxTarget(0)] * len(x), model),
    }, rounds=rounds)
    setting = f"{setting}, {len(x)} images x {len(ROAD_PERCENTAGES)} percentages"
    return _rows("road", "pytorch_grad_cam", "pytorch-grad-cam", t, len(flat), setting)


def _insertion_deletion(model: nn.Module, x: torch.Tensor, heat: torch.Tensor, device: torch.device, rounds: int,
                        setting: str, steps: int) -> list[BenchResult]:
    import quantus
    from torchvision.transforms.functional import gaussian_blur

    batch = default_batch_size(device)
    targets = torch.zeros(len(x), dtype=torch.long)
    flat = x.repeat_interleave(2 * (steps + 1), dim=0)
    full = torch.nn.functional.interpolate(heat[:, None], size=x.shape[-2:], mode="bilinear")
    x_np, a_np = x.cpu().numpy(), full.cpu().numpy()
    blurred = gaussian_blur(x, [11, 11], [5.0, 5.0]).cpu().numpy()
    original = x_np.reshape(len(x), -1)

    def insert_original(arr, indices, **kwargs):
        out = arr.copy()
        rows = np.arange(len(arr))[:, None]
        out[rows, indices] = original[rows, indices]
        return out

    # Quantus ranks channel values (the map broadcast over channels), so it takes C*H*W / in_step steps.
    in_step = x_np[0].size // steps
    deletion = quantus.PixelFlipping(features_in_step=in_step, perturb_baseline=0.0, disable_warnings=True)
    insertion = quantus.PixelFlipping(features_in_step=in_step, perturb_func=insert_original, disable_warnings=True)

    def library() -> None:
        for metric, start in ((deletion, x_np), (insertion, blurred)):
            metric(model=model, x_batch=start, y_batch=targets.numpy(), a_batch=a_np, device=str(device),
                   softmax=True, channel_first=True, batch_size=batch)

    def ours() -> None:
        deletion_curves(model, x, targets, heat, steps=steps)
        insertion_curves(model, x, targets, heat, steps=steps)

    t = _interleaved(device, {"forward": lambda: _forward(model, flat, batch), "ours": ours, "library": library},
                     rounds=rounds)
    setting = f"{setting}, {len(x)} images x 2 x {steps + 1} steps"
    return _rows("insertion_deletion", "quantus", "Quantus PixelFlipping", t, len(flat), setting)


def _rows(metric: str, library: str, library_label: str, t: dict[str, float], total: int,
          setting: str) -> list[BenchResult]:
    """`<metric>_vs_forward` (throughput of `total` perturbed images) and `<metric>_vs_<library>` (time)."""
    return [BenchResult(f"{metric}_vs_forward", t["forward"] / t["ours"], f"{total / t['ours']:.1f} img/s",
                        f"{total / t['forward']:.1f} img/s forward", setting),
            BenchResult(f"{metric}_vs_{library}", t["library"] / t["ours"], f"{t['ours']:.2f} s",
                        f"{t['library']:.2f} s {library_label}", setting)]


def run(quick: bool) -> list[BenchResult]:
    """Every row; on the CPU each contender runs on one thread (see heatlens.bench.explain.run)."""
    from threadpoolctl import threadpool_limits

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = SlicedTimm().to(device).eval()
    size = 64 if quick else (224 if device.type == "cuda" else 112)
    num_images = 2 if quick or device.type == "cpu" else 64
    steps = 6 if quick else 24  # divisible by the 3 channels, so Quantus' step size divides H*W
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(num_images, 3, size, size, generator=generator).to(device)
    heat = torch.rand(num_images, 7, 7, generator=generator).to(device)
    rounds = 1 if quick else 2
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    setting = f"{_where(device)}, resnet18 {size}px, batch {default_batch_size(device)}"  # after the thread cap
    try:
        with threadpool_limits(limits=1):
            return [*_road(model, x, heat, device, rounds, setting),
                    *_insertion_deletion(model, x, heat, device, rounds, setting, steps)]
    finally:
        torch.set_num_threads(threads)
