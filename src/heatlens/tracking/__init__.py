"""The only door to MLflow: where runs go, what they record, the post-fit logging handle and the served model.
May import mlflow, Lightning's MLflow logger, heatlens.models, data, plots, report, explain; never callbacks or cli.
"""

from heatlens.tracking.errors import ModelInputError, TrackingError
from heatlens.tracking.model import HeatlensClassifier, log_selected_model
from heatlens.tracking.names import run_name_for
from heatlens.tracking.reports import log_checkpoints, log_test_reports
from heatlens.tracking.run import RunHandle
from heatlens.tracking.setup import (
    UPLOAD_POLICIES,
    HeatlensMLFlowLogger,
    check_logger_config,
    create_logger,
    default_tracking_uri,
    flatten,
    git_commit,
    handle_for,
    log_run_config,
    record_failure,
    resolve_tracking_uri,
    run_location,
    run_reference,
)

__all__ = [
    "UPLOAD_POLICIES",
    "HeatlensClassifier",
    "HeatlensMLFlowLogger",
    "ModelInputError",
    "RunHandle",
    "TrackingError",
    "check_logger_config",
    "create_logger",
    "default_tracking_uri",
    "flatten",
    "git_commit",
    "handle_for",
    "log_checkpoints",
    "log_run_config",
    "log_selected_model",
    "log_test_reports",
    "record_failure",
    "resolve_tracking_uri",
    "run_location",
    "run_name_for",
    "run_reference",
]
