"""The only door to MLflow: where runs go, what they record, and the post-fit logging handle."""

from heatlens.tracking.errors import TrackingError
from heatlens.tracking.reports import log_checkpoints, log_test_reports
from heatlens.tracking.run import RunHandle
from heatlens.tracking.setup import (
    DEFAULT_TRACKING_URI,
    create_logger,
    flatten,
    git_commit,
    handle_for,
    log_run_config,
    record_failure,
    resolve_tracking_uri,
    run_reference,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "RunHandle",
    "TrackingError",
    "create_logger",
    "flatten",
    "git_commit",
    "handle_for",
    "log_checkpoints",
    "log_run_config",
    "log_test_reports",
    "record_failure",
    "resolve_tracking_uri",
    "run_reference",
]
