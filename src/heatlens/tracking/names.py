"""Unique, readable run names: `densenet201-phantom-3`, and `densenet201-phantom-3.1` for job 1 of a sweep."""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from heatlens.naming import slug

PAGE_SIZE = 1000


def run_name_for(
    tracking_uri: str, experiment_name: str, base: str, job_number: int | None = None, sweep_id: str | None = None
) -> str:
    """`<base>-<n>`, n one more than any number `base` already has in the experiment (deleted runs
    included, so a name is never reused). A sweep job is `<base>-<n>.<job_number>`: the jobs of one
    sweep (same `sweep_id` tag) share n, so jobs starting at the same moment differ by their job
    number. Two runs that still end up with the same name (separate jobs started at the same
    instant) are told apart by `settle_unique_name` once they exist.
    """
    base = slug(base)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    numbered = re.compile(rf"^{re.escape(base)}-(\d+)(?:\.\d+)?$")
    used, in_sweep = [], []
    runs = _runs_named_like(client, experiment.experiment_id, f"{base}-%") if experiment else iter(())
    for run in runs:
        match = numbered.match(run.info.run_name or "")
        if match is None:
            continue
        used.append(int(match.group(1)))
        if sweep_id not in (None, "none") and run.data.tags.get("sweep_id") == sweep_id:
            in_sweep.append(int(match.group(1)))
    number = min(in_sweep) if in_sweep else max(used, default=0) + 1
    return f"{base}-{number}" if job_number is None else f"{base}-{number}.{job_number}"


def settle_unique_name(client: MlflowClient, run: Run) -> str:
    """The run's final name: unchanged when no other run of its experiment has it, else suffixed
    with its own id (unique). Each run checks after it exists, so of two runs created with one
    name at least the later one sees the other (the store orders writes) and renames itself."""
    name = run.info.run_name
    others = [r for r in _runs_named_like(client, run.info.experiment_id, name) if r.info.run_id != run.info.run_id]
    if any(r.info.run_name == name for r in others):
        name = f"{name}-{run.info.run_id[:8]}"
        client.update_run(run.info.run_id, name=name)
    return name


def _runs_named_like(client: MlflowClient, experiment_id: str, pattern: str) -> Iterator[Run]:
    # `slug` keeps names free of quotes; LIKE's `_` wildcard only widens the match, filtered after.
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"attributes.run_name LIKE '{pattern}'",
            run_view_type=ViewType.ALL, max_results=PAGE_SIZE, page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return
