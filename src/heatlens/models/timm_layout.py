"""Any timm model as `features(x)` -> (B, K, h, w) map and `head_input(fmap)` -> what timm's `forward_head`
takes, whatever the layout timm's `forward_features` returns (NCHW, Swin's NHWC, ViT tokens).

ViT-style models that classify from the class token read nothing from the patch tokens after the last
block (their Grad-CAM there is zero), so their map is the patch grid entering the last block, and the
head runs the last block, the final norm and timm's head (pytorch-grad-cam's advice for ViTs, with the
reshape done here). The class / register tokens do not fit the map: `features` keeps them for `head`.
"""

from __future__ import annotations

import torch
from torch import nn
from timm.models import VisionTransformer

from heatlens.models.errors import ModelConfigError


def derive_structure(
    model: nn.Module, name: str, in_chans: int, min_size: int, own_head: bool
) -> tuple[TimmLayout, tuple[str, ...], tuple[str, ...]]:
    """(layout, head modules, last block) of a timm model, from one forward of a blank image.

    Head modules: the top-level modules `forward_head` runs. Last block: timm's last feature stage
    (`feature_info`) and the top-level modules `forward_features` runs after it.
    """
    # timm's native size: window / fixed-grid models (MaxViT, CoAtNet, LeViT) take no other.
    size = max(min_size, *model.pretrained_cfg.get("input_size", (3, 224, 224))[1:])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            images = torch.zeros(1, in_chans, size, size, device=next(model.parameters()).device)
            feature_calls, out = _top_level_calls(model, lambda: model.forward_features(images))
            head_calls, _ = _top_level_calls(model, lambda: model.forward_head(out))
    finally:
        model.train(was_training)
    layout = TimmLayout(model, _layout(model, name, out, own_head))
    feature_info = getattr(model, "feature_info", None) or []
    last_stage = feature_info[-1]["module"] if feature_info else feature_calls[-1]
    stage_root = last_stage.split(".")[0]
    after = feature_calls[feature_calls.index(stage_root) + 1:] if stage_root in feature_calls else []
    last_block = tuple(dict.fromkeys([last_stage, *[m for m in after if m not in head_calls]]))
    return layout, tuple(dict.fromkeys(head_calls)), last_block


def _top_level_calls(model: nn.Module, run) -> tuple[list[str], torch.Tensor]:
    """Top-level modules of `model` that `run()` enters (some heads call only their children), in order."""
    names: list[str] = []
    handles = [m.register_forward_pre_hook(lambda *_, n=n: names.append(n.split(".")[0]))
               for n, m in model.named_modules() if n]
    try:
        out = run()
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(names)), out


def _layout(model: nn.Module, name: str, out: torch.Tensor, own_head: bool) -> str:
    """nchw | nhwc | tokens | vit_split, from what forward_features returns and timm's attributes."""
    if out.ndim == 4:
        return "nhwc" if getattr(model, "output_fmt", "NCHW") == "NHWC" else "nchw"
    if out.ndim != 3 or not hasattr(model, "patch_embed"):
        raise ModelConfigError(
            f"backbone.name={name}: forward_features returns shape {tuple(out.shape)}, not a map heatlens can find"
        )
    if own_head or getattr(model, "global_pool", None) not in ("token", ""):
        return "tokens"
    if isinstance(model, VisionTransformer) and len(model.blocks) >= 2:
        return "vit_split"
    # Class-token readout through blocks heatlens cannot split: the patch tokens get no gradient.
    raise ModelConfigError(
        f"backbone.name={name}: its head reads only the class token after blocks heatlens cannot split, "
        "so it has no feature map for Grad-CAM"
    )


class TimmLayout(nn.Module):
    """Routes timm's `forward_features` / `forward_head` through a (B, K, h, w) map."""

    def __init__(self, model: nn.Module, layout: str) -> None:
        super().__init__()
        # In a list, not a submodule: the timm model stays only the net's `backbone` (state-dict layout).
        self._model = [model]
        self.layout = layout
        self.prefix: torch.Tensor | None = None

    @property
    def model(self) -> nn.Module:
        return self._model[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        if self.layout == "nchw":
            return model.forward_features(x)
        if self.layout == "nhwc":
            return model.forward_features(x).permute(0, 3, 1, 2)
        if self.layout == "vit_split":
            tokens = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x))))
            tokens = model.blocks[:-1](tokens)
        else:
            tokens = model.forward_features(x)
        height, width = self._grid(x)
        n_prefix = model.num_prefix_tokens
        self.prefix = tokens[:, :n_prefix]
        patches = tokens[:, n_prefix:]
        return patches.reshape(patches.shape[0], height, width, -1).permute(0, 3, 1, 2)

    def head_input(self, fmap: torch.Tensor) -> torch.Tensor:
        """What timm's `forward_head` takes, from a map (the last block and norm first for vit_split)."""
        if self.layout == "nchw":
            return fmap
        if self.layout == "nhwc":
            return fmap.permute(0, 2, 3, 1)
        tokens = fmap.flatten(2).transpose(1, 2)
        if self.model.num_prefix_tokens:
            tokens = torch.cat([self._prefix_for(fmap).to(tokens.dtype), tokens], dim=1)
        if self.layout == "vit_split":
            tokens = self.model.norm(self.model.blocks[-1](tokens))
        return tokens

    def _prefix_for(self, fmap: torch.Tensor) -> torch.Tensor:
        if self.prefix is None:
            raise RuntimeError("head(fmap) of a token model needs features(x) first (its class tokens)")
        prefix = self.prefix.clone()  # a normal tensor even when features ran under inference_mode
        if fmap.shape[0] != prefix.shape[0] and fmap.shape[0] % prefix.shape[0] == 0:
            prefix = prefix.repeat_interleave(fmap.shape[0] // prefix.shape[0], dim=0)  # batched ablations
        return prefix

    def _grid(self, x: torch.Tensor) -> tuple[int, int]:
        embed = self.model.patch_embed
        if getattr(embed, "dynamic_img_size", False) or getattr(self.model, "dynamic_img_size", False):
            return tuple(embed.dynamic_feat_size(x.shape[-2:]))
        return tuple(embed.grid_size)
