"""Lightning callbacks: recall checkpoints and the post-fit explanations of the test set."""

from heatlens.callbacks.aopc import AopcCallback
from heatlens.callbacks.attributions import AttributionsCallback, SanityCallback
from heatlens.callbacks.base import ExplainCallbackError, ExplanationCallback
from heatlens.callbacks.embeddings import EmbeddingsCallback
from heatlens.callbacks.gradcam import GradCamCallback, HeatmapStatsCallback
from heatlens.callbacks.localisation import LocalisationCallback

__all__ = [
    "AopcCallback",
    "AttributionsCallback",
    "EmbeddingsCallback",
    "ExplainCallbackError",
    "ExplanationCallback",
    "GradCamCallback",
    "HeatmapStatsCallback",
    "LocalisationCallback",
    "SanityCallback",
]
