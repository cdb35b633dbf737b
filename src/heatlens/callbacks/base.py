"""Base of the post-fit explanation callbacks: run after `trainer.test` on the tested checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch

from heatlens.callbacks.context import ExplainContext, context_for, drop_context

log = logging.getLogger(__name__)


class ExplainCallbackError(ValueError):
    """An explanation callback is configured wrongly: the message names the option and value."""


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


class ExplanationCallback(L.Callback):
    """Runs `explain(context)` at the end of every test pass, with gradients available.

    Lightning tests under `torch.inference_mode()`; Grad-CAM and attributions need autograd, so the
    work runs with inference mode off and gradients on. All ranks call `explain` in the same order
    (it may contain collectives); only rank 0 logs. The last explanation callback of the pass logs
    `time/<stage>_s` for every stage.
    """

    name = "explanation"

    def explain(self, context: ExplainContext) -> None:
        raise NotImplementedError

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        drop_context(trainer)  # a new test pass: nothing cached from an earlier checkpoint

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with torch.inference_mode(False), torch.enable_grad(), model_state_kept(pl_module):
            context = context_for(trainer, pl_module)
            with context.timer.stage(self.name):
                self.explain(context)
        mine = [cb for cb in trainer.callbacks if isinstance(cb, ExplanationCallback)]
        if mine and mine[-1] is self:
            context.log_timings()
            drop_context(trainer)

    @staticmethod
    def check_max_images(value: int | None, key: str) -> int | None:
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ExplainCallbackError(f"{key}={value!r}: give a positive number of images or null (all)")
        return value
