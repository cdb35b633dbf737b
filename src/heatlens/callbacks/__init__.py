"""Lightning callbacks: recall checkpoints and the post-fit explanations of the test set.

Names are loaded on first use (PEP 562): `heatlens.callbacks.distributed` and `.checkpoints` are
imported by spawned worker processes and must not pull in MLflow and matplotlib for nothing.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AopcCallback": "aopc",
    "AttributionsCallback": "attributions",
    "SanityCallback": "attributions",
    "ExplainCallbackError": "base",
    "ExplanationCallback": "base",
    "EmbeddingsCallback": "embeddings",
    "GradCamCallback": "gradcam",
    "HeatmapStatsCallback": "gradcam",
    "LocalisationCallback": "localisation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'heatlens.callbacks' has no attribute {name!r}")
    return getattr(import_module(f"heatlens.callbacks.{_EXPORTS[name]}"), name)
