"""Pure explanation functions over models exposing `features(x)`, `head(fmap)`, `embed(x)`.

Submodules: cam, perturbation, stats, eigen, embeddings, attributions, localisation, sanity.
No Lightning, MLflow or Hydra imports here (a test checks it).
"""

from heatlens.explain.errors import ExplainError

__all__ = ["ExplainError"]
