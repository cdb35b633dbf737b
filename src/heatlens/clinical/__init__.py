"""Numbers a clinician can act on: calibration, operating points with intervals, selective prediction.

Pure functions of predicted probabilities (numpy / torch / scikit-learn): no Lightning, MLflow or
Hydra. `heatlens.tracking.clinical` logs them; docs/guides/clinical-numbers.md explains each number.

Members are imported on first use (heatlens.lazy): importing the package costs nothing.
"""

from heatlens.lazy import lazy_members

_MEMBERS = {
    "CALIBRATIONS": "settings",
    "CalibrationSummary": "calibration",
    "ClinicalConfigError": "settings",
    "ClinicalEvaluation": "evaluation",
    "ClinicalSettings": "settings",
    "Interval": "intervals",
    "OperatingRule": "operating_points",
    "RATES": "operating_points",
    "ReliabilityBins": "calibration",
    "RiskCoverage": "selective",
    "TTA_MODES": "settings",
    "apply_temperature": "calibration",
    "auroc_interval": "operating_points",
    "binary_rates": "operating_points",
    "bootstrap_indices": "intervals",
    "brier_score": "calibration",
    "calibration_error": "calibration",
    "calibration_summary": "calibration",
    "choose_threshold": "operating_points",
    "clinical_evaluation": "evaluation",
    "clinical_settings": "settings",
    "fit_temperature": "calibration",
    "negative_log_likelihood": "calibration",
    "parse_rule": "operating_points",
    "percentile_interval": "intervals",
    "rate_intervals": "operating_points",
    "reliability_bins": "calibration",
    "risk_coverage": "selective",
    "tta_probabilities": "tta",
}

__all__ = sorted(_MEMBERS)
__getattr__ = lazy_members(__name__, _MEMBERS)
