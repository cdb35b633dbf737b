"""Lightning callbacks: recall checkpoints, and PostFitExplanations, which explains the tested checkpoint.
May import heatlens.explain, models, data, plots, tracking and top-level helpers; never heatlens.cli.

Names are loaded on first use (PEP 562): `heatlens.callbacks.distributed` and `.checkpoints` are
imported by spawned worker processes and must not pull in MLflow and matplotlib for nothing.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AopcCallback": "aopc",
    "AttributionsCallback": "attributions",
    "CamRows": "sample",
    "EmbeddingsCallback": "embeddings",
    "ExplainCallbackError": "base",
    "ExplainedSample": "sample",
    "ExplainersCallback": "explainers",
    "ExplanationCallback": "base",
    "Findings": "base",
    "GradCamCallback": "gradcam",
    "HeatmapStatsCallback": "heatmap_stats",
    "LocalisationCallback": "localisation",
    "PostFitExplanations": "post_fit",
    "SanityCallback": "sanity",
    "ShortcutCallback": "shortcut",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'heatlens.callbacks' has no attribute {name!r}")
    return getattr(import_module(f"heatlens.callbacks.{_EXPORTS[name]}"), name)
