"""MLflow read side of the comparison: find runs, read numbers and `explain/*.npz`, log the report run."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from heatlens.report.errors import CompareError
from heatlens.report.runs import RunData, explain_arrays_from_npz
from heatlens.tracking.setup import resolve_tracking_uri

# One download bar per npz file drowns the log of a comparison of many runs.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Tag marking the report's own run so that later comparisons do not list it as a model.
REPORT_TAG = "heatlens.kind"
REPORT_KIND = "compare_report"
TEST_HASH_TAGS = ("test_hash", "data.test_hash", "test_set_hash")
# Test-set labels and probabilities logged by training: predictions even for runs without explanations.
PREDICTIONS_FILE = "reports/test_predictions.npz"
TEST_HASH_KEYS = ("test_hash", "hash", "sha256", "test_set_hash")


def find_runs(
    client: MlflowClient,
    experiment_name: str | None = None,
    run_ids: Sequence[str] = (),
    include_unfinished: bool = False,
    include_children: bool = False,
) -> list[Run]:
    """Runs named by id, or the runs of an experiment (finished, top-level, not report runs), oldest first."""
    if run_ids:
        runs = []
        for run_id in run_ids:
            try:
                runs.append(client.get_run(str(run_id)))
            except MlflowException as error:
                raise CompareError(f"run id {run_id!r} not found in {client.tracking_uri}") from error
        return runs
    if not experiment_name:
        raise CompareError("give an experiment name (experiment_name=...) or a list of run ids (run_ids=[...])")
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        known = ", ".join(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY)) or "none"
        raise CompareError(f"experiment {experiment_name!r} not found in {client.tracking_uri} (known: {known})")
    found = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"], max_results=5000)
    return [
        run
        for run in found
        if run.data.tags.get(REPORT_TAG) != REPORT_KIND
        and (include_unfinished or run.info.status == "FINISHED")
        and (include_children or "mlflow.parentRunId" not in run.data.tags)
    ]


def _artifact_paths(client: MlflowClient, run_id: str, folder: str) -> list[str]:
    try:
        return [a.path for a in client.list_artifacts(run_id, folder) if not a.is_dir]
    except (MlflowException, OSError):
        return []


def read_test_hash(client: MlflowClient, run: Run, download_dir: Path) -> str | None:
    """The run's test-set hash: a tag or param, else a `reports/*.json` holding one."""
    for key in TEST_HASH_TAGS:
        value = run.data.tags.get(key) or run.data.params.get(key)
        if value:
            return value
    for path in _artifact_paths(client, run.info.run_id, "reports"):
        if not path.endswith(".json"):
            continue
        local = Path(client.download_artifacts(run.info.run_id, path, str(download_dir)))
        try:
            content = json.loads(local.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(content, dict):
            for key in TEST_HASH_KEYS:
                if isinstance(content.get(key), str):
                    return content[key]
    return None


def read_explain_arrays(client: MlflowClient, run_id: str, download_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every `explain/*.npz` of the run plus `reports/test_predictions.npz`, as file stem -> {name: array}."""
    paths = [p for p in _artifact_paths(client, run_id, "explain") if p.endswith(".npz")]
    paths += [p for p in _artifact_paths(client, run_id, "reports") if p == PREDICTIONS_FILE]
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
) -> list[RunData]:
    """Load the runs to compare (see find_runs) with their arrays downloaded under download_dir."""
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    runs = find_runs(client, experiment_name, run_ids, include_unfinished=include_unfinished)
    target = Path(download_dir) if download_dir else Path(tempfile.mkdtemp(prefix="heatlens-compare-"))
    return [run_data(client, run, target) for run in runs]


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
