"""MLflow read side of the comparison: find runs, read numbers and `explain/*.npz`, log the report run."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from matplotlib.figure import Figure
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heatlens.report.errors import CompareError
from heatlens.report.runs import RunData, explain_arrays_from_npz
from heatlens.report.summary import run_summary_figure
from heatlens.tracking.setup import resolve_tracking_uri

# One download bar per npz file drowns the log of a comparison of many runs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

log = logging.getLogger(__name__)

# Tags other parts write: `heatlens.kind` marks the report's own runs (here) and sweep parents
# (tracking.sweep); pruned trials carry `pruned`, re-explained child runs `explained_checkpoint`.
REPORT_TAG = "heatlens.kind"
REPORT_KIND = "compare_report"
SWEEP_KIND = "sweep"
PRUNED_TAG = "pruned"
EXPLAINED_TAG = "explained_checkpoint"
TEST_HASH_TAG = "test_hash"
# Written by tracking.reports: the test set's ids and hash, and its labels and probabilities
# (predictions even for runs without explanations).
TEST_SET_FILE = "reports/test_set.json"
PREDICTIONS_FILE = "reports/test_predictions.npz"
SUMMARY_FILES = ("test_predictions", "gradcam", "aopc")  # what summary.png draws from


@dataclass
class RunSelection:
    """The runs to compare and the runs left out for their state, with the reason."""

    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[Run, str]] = field(default_factory=list)

    def skipped_message(self) -> str:
        """One line naming every run left out and why."""
        listed = ", ".join(f"{r.info.run_name or r.info.run_id[:8]} ({r.info.run_id[:6]}, {why})" for r, why in self.skipped)
        return f"skipped {len(self.skipped)} run(s) that are not finished models: {listed}"


def _skip_reason(run: Run, include_unfinished: bool) -> str | None:
    """Why a run is not compared: a sweep's parent run, a pruned trial, or a run that did not finish."""
    tags = run.data.tags
    if tags.get(REPORT_TAG) == SWEEP_KIND:
        return "sweep parent run"
    if include_unfinished:
        return None
    if PRUNED_TAG in tags:
        return f"pruned, {run.info.status}"
    if run.info.status != "FINISHED":
        return run.info.status
    return None


def select_runs(
    client: MlflowClient,
    experiment_name: str | None = None,
    run_ids: Sequence[str] = (),
    include_unfinished: bool = False,
) -> RunSelection:
    """Runs named by id, or the runs of an experiment (oldest first), split into those to compare and
    those skipped (not FINISHED, pruned, sweep parents). An experiment's report runs and re-explained
    child runs are left out silently; sweep trials (children of a sweep run) are compared."""
    if run_ids:
        found = []
        for run_id in run_ids:
            try:
                found.append(client.get_run(str(run_id)))
            except MlflowException as error:
                raise CompareError(f"run id {run_id!r} not found in {client.tracking_uri}") from error
    else:
        if not experiment_name:
            raise CompareError("give an experiment name (experiment_name=...) or a list of run ids (run_ids=[...])")
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            known = ", ".join(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)) or "none"
            raise CompareError(f"experiment {experiment_name!r} not found in {client.tracking_uri} (known: {known})")
        found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"],
                                   max_results=5000)
        found = [r for r in found if r.data.tags.get(REPORT_TAG) != REPORT_KIND and EXPLAINED_TAG not in r.data.tags]
    selection = RunSelection()
    for run in found:
        reason = _skip_reason(run, include_unfinished)
        if reason is None:
            selection.runs.append(run)
        else:
            selection.skipped.append((run, reason))
    return selection


def _artifact_paths(client: MlflowClient, run_id: str, folder: str) -> list[str]:
    try:
        return [a.path for a in client.list_artifacts(run_id, folder) if not a.is_dir]
    except (MlflowException, OSError):
        return []


def read_test_hash(client: MlflowClient, run: Run, download_dir: Path) -> str | None:
    """The run's test-set hash: its `test_hash` tag, else the `hash` of its `reports/test_set.json`."""
    if run.data.tags.get(TEST_HASH_TAG):
        return run.data.tags[TEST_HASH_TAG]
    if TEST_SET_FILE not in _artifact_paths(client, run.info.run_id, "reports"):
        return None
    local = Path(client.download_artifacts(run.info.run_id, TEST_SET_FILE, str(download_dir)))
    try:
        content = json.loads(local.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    value = content.get("hash") if isinstance(content, dict) else None
    return value if isinstance(value, str) else None


def read_explain_arrays(client: MlflowClient, run_id: str, download_dir: Path,
                        stems: Sequence[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Every `explain/*.npz` of the run plus `reports/test_predictions.npz` (only the files named in
    `stems` when given), as file stem -> {name: array}."""
    paths = [p for p in _artifact_paths(client, run_id, "explain") if p.endswith(".npz")]
    paths += [p for p in _artifact_paths(client, run_id, "reports") if p == PREDICTIONS_FILE]
    paths = [p for p in paths if stems is None or Path(p).stem in stems]
    files = {}
    for path in paths:
        local = client.download_artifacts(run_id, path, str(download_dir))
        with np.load(local, allow_pickle=False) as npz:
            files[Path(path).stem] = {key: npz[key] for key in npz.files}
    return files


def run_data(client: MlflowClient, run: Run, download_dir: Path) -> RunData:
    """RunData of one MLflow run: latest metric values, params, tags, test-set hash and arrays."""
    run_dir = download_dir / run.info.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunData(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id[:8],
        experiment_id=run.info.experiment_id,
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        test_hash=read_test_hash(client, run, run_dir),
        arrays=explain_arrays_from_npz(read_explain_arrays(client, run.info.run_id, run_dir)),
    )


def load_runs(
    experiment_name: str | None = None,
    run_ids: Sequence[str] = (),
    tracking_uri: str | None = None,
    download_dir: str | Path | None = None,
    include_unfinished: bool = False,
    on_skipped: Callable[[str], object] = log.warning,
) -> list[RunData]:
    """Load the runs to compare (see select_runs) with their arrays downloaded under download_dir;
    the line naming the runs skipped goes to `on_skipped` (a log warning by default, `print` in a notebook)."""
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    selection = select_runs(client, experiment_name, run_ids, include_unfinished)
    if selection.skipped:
        on_skipped(selection.skipped_message())
    target = Path(download_dir) if download_dir else Path(tempfile.mkdtemp(prefix="heatlens-compare-"))
    return [run_data(client, run, target) for run in selection.runs]


def summary_figure_for_run(client: MlflowClient, run_id: str) -> Figure:
    """The run's `summary.png` (heatlens.report.summary) from its logged metrics and npz arrays; the
    entry points log it at the top of the run's artifacts so MLflow's compare view shows it."""
    run = client.get_run(run_id)
    tags = run.data.tags
    title = run.info.run_name or run_id[:8]
    details = ", ".join(tags[key] for key in ("backbone", "dataset") if tags.get(key))
    with tempfile.TemporaryDirectory(prefix="heatlens-summary-") as folder:
        files = read_explain_arrays(client, run_id, Path(folder), SUMMARY_FILES)
    return run_summary_figure(files, run.data.metrics, title=f"{title} ({details})" if details else title)


def log_report_run(
    report_dir: str | Path,
    experiment_id: str,
    compared_run_ids: Iterable[str],
    tracking_uri: str | None = None,
    run_name: str = "compare",
    metrics: dict[str, float] | None = None,
) -> str:
    """Log the report folder as its own run in `experiment_id` (tagged so comparisons skip it); returns its run id."""
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    tags = {REPORT_TAG: REPORT_KIND, "compared_runs": ",".join(compared_run_ids)}
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    try:
        for key, value in (metrics or {}).items():
            client.log_metric(run.info.run_id, key, value)
        client.log_artifacts(run.info.run_id, str(report_dir), "report")
    except Exception:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
