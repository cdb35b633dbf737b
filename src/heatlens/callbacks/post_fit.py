"""The Lightning side of the post-fit explanations: at the end of `trainer.test`, one sample, every step, one log."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar
from torch.utils.data import DataLoader

from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback, Findings
from heatlens.callbacks.sample import ExplainedSample
from heatlens.callbacks.timing import StageTimer
from heatlens.explain import registry
from heatlens.explain.errors import ExplainError
from heatlens.explain.sampling import SAMPLINGS
from heatlens.progress import Advance
from heatlens.tracking import RunHandle


@contextmanager
def model_state_kept(module: torch.nn.Module) -> Iterator[None]:
    """Whatever the explanation does, the module leaves with the same train/eval modes, `requires_grad`
    flags and parameter `.grad` tensors it came with (weights are never written by explanations)."""
    modes = {name: m.training for name, m in module.named_modules()}
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    try:
        yield
    finally:
        for name, m in module.named_modules():
            m.training = modes.get(name, m.training)
        for param, flag, grad in zip(params, flags, grads):
            param.requires_grad_(flag)
            param.grad = grad


def test_pass_sample(trainer: L.Trainer, pl_module: L.LightningModule, max_images: int | None, how: str,
                     timer: StageTimer, methods: Sequence[str] = ("gradcam",)) -> ExplainedSample:
    """The sample of the trainer's test set; on rank 0 its progress bars join Lightning's Rich display."""
    loaders = trainer.test_dataloaders
    loader: DataLoader = loaders[0] if isinstance(loaders, Sequence) else loaders
    datamodule = getattr(trainer, "datamodule", None)
    kinds = getattr(datamodule, "mask_kinds", None)
    bar = trainer.progress_bar_callback
    return ExplainedSample.from_loader(
        pl_module.net, loader, pl_module.class_names,
        kinds if kinds is not None else getattr(loader.dataset, "mask_kinds", []), max_images, how,
        denormalize=getattr(datamodule, "denormalize", None), timer=timer, methods=methods,
        show_progress=trainer.is_global_zero and bar is not None,
        progress_host=bar.progress if isinstance(bar, RichProgressBar) else None,
    )


def log_findings(run: RunHandle, findings: Findings, advance: Advance) -> None:
    """Log one step's findings; `advance(1)` after each figure (drawing and rendering them is the slow part)."""
    if findings.metrics:
        run.log_metrics(findings.metrics)
    for path, arrays in findings.arrays.items():
        run.log_arrays(path, **arrays)
    for path, draw in findings.figures.items():
        run.log_figure(draw, path)
        advance(1)
    for path, document in findings.documents.items():
        run.log_dict(document, path)


class PostFitExplanations(L.Callback):
    """Explains the tested checkpoint on its test set at the end of every test pass.

    Builds the pass's ExplainedSample (the first `max_images` test images of the `sample` order: see
    heatlens.explain.sampling; the heatmap steps run on each of `methods`), hands it to each step in turn
    on every rank, and on rank 0 logs each step's Findings and `time/<step>_s` (the shared Grad-CAM pass
    counts as `time/gradcam_s` only, each other method's maps as `time/maps_<method>_s`).
    Lightning tests under `torch.inference_mode()`; Grad-CAM and attributions need autograd, so the
    steps run with inference mode off and gradients on, and leave the module as they found it.
    """

    def __init__(self, explainers: Sequence[ExplanationCallback] = (), max_images: int | None = 256,
                 sample: str = "stratified", methods: Sequence[str] = ("gradcam",)) -> None:
        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                       or max_images < 1):
            raise ExplainCallbackError(
                f"explain.max_images={max_images!r}: give a positive number of images or null (all)")
        if sample not in SAMPLINGS:
            raise ExplainCallbackError(f"explain.sample={sample!r}: choose one of {', '.join(SAMPLINGS)}")
        kept = [e for e in explainers if e is not None]  # `explain.callbacks.<name>=null` leaves a step out
        wrong = [type(e).__name__ for e in kept if not isinstance(e, ExplanationCallback)]
        if wrong:
            raise ExplainCallbackError(f"explain.callbacks: {', '.join(wrong)} is not an explanation step")
        try:
            self.methods = registry.check_methods(list(methods))
        except ExplainError as error:
            raise ExplainCallbackError(str(error)) from None
        self.explainers = kept
        self.max_images = max_images
        self.sample = sample

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.explainers:
            return
        run = RunHandle.from_trainer(trainer) if trainer.is_global_zero else None
        timer = StageTimer()
        with torch.inference_mode(False), torch.enable_grad(), model_state_kept(pl_module):
            sample = test_pass_sample(trainer, pl_module, self.max_images, self.sample, timer, self.methods)
            for explainer in self.explainers:
                with timer.stage(explainer.name):
                    findings = explainer.explain(sample)
                    if run is not None and findings is not None:
                        with sample.progress(len(findings.figures), f"explain: {explainer.name} figures") as advance:
                            log_findings(run, findings, advance)
        if run is not None:
            run.log_metrics(timer.metrics())
