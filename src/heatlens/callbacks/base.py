"""What an explanation step is: `explain(sample) -> Findings`, run by PostFitExplanations on every rank."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from heatlens.errors import HeatlensError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from heatlens.callbacks.sample import ExplainedSample


class ExplainCallbackError(HeatlensError):
    """An explanation option is wrong: the message names the option and value."""


@dataclass
class Findings:
    """What one step found, by artifact path; PostFitExplanations logs it into the run (rank 0)."""

    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Callable[[], Figure]] = field(default_factory=dict)  # drawn only when the run logs figures
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # saved with np.savez_compressed
    documents: dict[str, Any] = field(default_factory=dict)  # saved as JSON

    def update(self, other: Findings | None) -> None:
        if other is not None:
            self.metrics |= other.metrics
            self.figures |= other.figures
            self.arrays |= other.arrays
            self.documents |= other.documents


def each_method(methods: Sequence[str], explain_method: Callable[[str], Findings | None]) -> Findings | None:
    """The findings of `explain_method` for every method of `methods` (a sample's `step_methods`), merged;
    None when no method found anything to log."""
    found = Findings()
    for method in methods:
        found.update(explain_method(method))
    return found if found.metrics or found.arrays else None


def method_name(name: str, method: str) -> str:
    """Where one method's result goes: `xai/aopc_morf` -> `xai/<method>/aopc/morf`, `xai/loc/lung/auc` ->
    `xai/<method>/loc/lung/auc`, `figures/aopc/curves.png` -> `figures/methods/<method>/aopc/curves.png`,
    `explain/aopc.npz` -> `explain/methods/<method>/aopc.npz`."""
    head, _, rest = name.partition("/")
    if head == "xai":
        return f"xai/{method}/{rest.replace('aopc_', 'aopc/', 1)}"
    return f"{head}/methods/{method}/{rest}"


def per_method(findings: Findings, method: str, methods: list[str]) -> Findings:
    """One method's findings under their logged names. Grad-CAM keeps today's names (the default run,
    `explain.methods=[gradcam]`, logs exactly those); when other methods are chosen, every chosen method's
    metrics are also logged under `xai/<method>/...`, and its figures and arrays under `methods/<method>/`
    (Grad-CAM's stay where they were)."""
    chosen = method in methods and methods != ["gradcam"]
    out = Findings(documents=dict(findings.documents))
    if method == "gradcam":
        out.metrics, out.figures, out.arrays = dict(findings.metrics), dict(findings.figures), dict(findings.arrays)
    elif chosen:
        out.figures = {method_name(k, method): v for k, v in findings.figures.items()}
        out.arrays = {method_name(k, method): v for k, v in findings.arrays.items()}
    if chosen:
        out.metrics |= {method_name(k, method): v for k, v in findings.metrics.items()}
    return out


class ExplanationCallback:
    """One step of the post-fit explanation (configured under `explain.callbacks.<name>`).

    `explain` runs on every rank in the same order (it may gather, a collective) and returns what
    rank 0 should log, or None (other ranks, or nothing to report). It never logs by itself.
    """

    name = "explanation"

    def explain(self, sample: ExplainedSample) -> Findings | None:
        raise NotImplementedError
