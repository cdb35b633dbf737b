"""What an explanation step is: `explain(sample) -> Findings`, run by PostFitExplanations on every rank."""

from __future__ import annotations

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
    figures: dict[str, Figure] = field(default_factory=dict)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # saved with np.savez_compressed
    documents: dict[str, Any] = field(default_factory=dict)  # saved as JSON


class ExplanationCallback:
    """One step of the post-fit explanation (configured under `explain.callbacks.<name>`).

    `explain` runs on every rank in the same order (it may gather, a collective) and returns what
    rank 0 should log, or None (other ranks, or nothing to report). It never logs by itself.
    """

    name = "explanation"

    def explain(self, sample: ExplainedSample) -> Findings | None:
        raise NotImplementedError
