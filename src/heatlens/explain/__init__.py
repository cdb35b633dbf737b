"""Pure explanation functions (Grad-CAM, perturbation, heatmap statistics, ...) and which images to explain.
May import numeric and XAI libraries and heatlens top-level helpers; not Lightning, MLflow, Hydra, other subpackages.

Submodules: cam, perturbation, stats, eigen, embeddings, attributions, localisation, sanity, sampling,
images, shortcut. The import rule is checked by tests/test_layering.py.
"""

from heatlens.explain.errors import ExplainError

__all__ = ["ExplainError"]
