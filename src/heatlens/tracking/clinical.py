"""Log the clinical numbers of the tested checkpoint: calibration, operating points, risk-coverage."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import numpy as np

from heatlens.clinical import ClinicalEvaluation, ClinicalSettings, clinical_evaluation
from heatlens.naming import slug
from heatlens.plots.calibration import SERIES_COLOURS, operating_point_figure, reliability_figure, risk_coverage_figure
from heatlens.tracking.run import RunHandle

log = logging.getLogger(__name__)

RELIABILITY_FIGURE = "figures/calibration/reliability.png"


def log_clinical_reports(run: RunHandle, class_names: Sequence[str], healthy_class: str | None,
                         test: dict[str, np.ndarray], val: dict[str, np.ndarray], settings: ClinicalSettings,
                         seed: int = 0) -> ClinicalEvaluation:
    """Metrics (names in docs/guides/clinical-numbers.md), `reports/clinical.json`,
    `reports/operating_points.json`, the reliability diagrams, the risk-coverage curve and one
    confusion matrix per operating point; returns the evaluation (temperature, thresholds)."""
    result = clinical_evaluation(test, val, class_names, healthy_class, settings, seed=seed)
    if result.skipped:
        log.info("clinical: %s", result.skipped)
    if not result.metrics:
        return result
    run.log_metrics({k: v for k, v in result.metrics.items() if np.isfinite(v)})
    run.log_dict(result.report, "reports/clinical.json")
    run.log_dict(result.report["operating_points"], "reports/operating_points.json")
    panels = {panel: [(label, bins, colour) for (label, bins), colour in zip(series, SERIES_COLOURS)]
              for panel, series in result.reliability.items()}
    run.log_figure(lambda: reliability_figure(panels, class_names=class_names), RELIABILITY_FIGURE)
    if result.risk:
        run.log_figure(lambda: risk_coverage_figure(result.risk), "figures/risk_coverage.png")
    rule = settings.operating_point.describe()
    for point in result.report["operating_points"]:
        run.log_figure(partial(operating_point_figure, np.array(point["test_confusion"]), point["class_name"],
                               point["threshold"], rule, point["sensitivity"], point["specificity"], data="test"),
                       f"figures/operating_points/{slug(point['class_name'])}.png")
    return result
