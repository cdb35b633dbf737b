"""Shared pieces of the metric tests: a gradient explainer, an edge detector and Quantus' explain_func."""

import numpy as np
import torch


def input_x_gradient(model, images, targets):
    """(B, H, W) input x gradient of the target logit, summed over channels: model- and class-dependent."""
    x = images.detach().clone().requires_grad_(True)
    logits = model.eval()(x)
    chosen = logits.gather(1, torch.as_tensor(targets).long().view(-1, 1).to(logits.device)).sum()
    (grad,) = torch.autograd.grad(chosen, x)
    return (grad * x).sum(dim=1).detach()


def edge_detector(model, images, targets):
    """Gradient magnitude of the image: ignores the model and the class."""
    dy = images[..., 1:, :-1] - images[..., :-1, :-1]
    dx = images[..., :-1, 1:] - images[..., :-1, :-1]
    return (dx ** 2 + dy ** 2).sum(dim=1).sqrt()


def quantus_explain(model, inputs, targets, **kwargs):
    """Quantus' explain_func contract: numpy in, (B, 1, H, W) numpy out."""
    x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    return input_x_gradient(model, x, torch.as_tensor(np.asarray(targets)))[:, None].numpy()
