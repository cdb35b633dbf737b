"""The only door to MLflow: where runs go, what they record, the post-fit logging handle and the served model.
May import mlflow, Lightning's MLflow logger, heatlens.models, data, plots, report, explain; never callbacks or cli.

Members are imported on first use (heatlens.lazy): importing the package costs nothing.
"""

from heatlens.lazy import lazy_members

# errors too: ModelInputError is an MlflowException (the served model answers it with HTTP 400).
_MEMBERS = {
    "ModelInputError": "errors",
    "TrackingError": "errors",
    "HeatlensClassifier": "model",
    "HeatlensMLFlowLogger": "logger",
    "RunHandle": "run",
    "UPLOAD_POLICIES": "setup",
    "check_logger_config": "setup",
    "create_logger": "logger",
    "default_tracking_uri": "setup",
    "flatten": "setup",
    "git_commit": "setup",
    "log_checkpoints": "reports",
    "log_run_config": "setup",
    "log_selected_model": "model",
    "log_test_reports": "reports",
    "record_failure": "setup",
    "resolve_tracking_uri": "setup",
    "run_location": "setup",
    "run_name_for": "names",
    "run_reference": "logger",
}

__all__ = sorted(_MEMBERS)
__getattr__ = lazy_members(__name__, _MEMBERS)
