"""notebooks/compare_runs.ipynb executes on a tiny experiment and draws the comparison."""

from __future__ import annotations

import os

import nbformat
from fake_runs import log_fake_run, make_fake_run
from nbclient import NotebookClient

from heatlens.paths import PROJECT_ROOT


def test_notebook_runs_on_a_tiny_experiment(mlflow_store, tmp_path, monkeypatch):
    client, experiment_id, experiment, uri = mlflow_store
    for name, seed in (("first", 0), ("second", 3)):
        log_fake_run(client, experiment_id, name, make_fake_run(seed))
    monkeypatch.setenv("HEATLENS_EXPERIMENT", experiment)
    monkeypatch.setenv("HEATLENS_PAIR", "second,first")
    monkeypatch.setenv("HEATLENS_N_BOOT", "200")
    monkeypatch.setenv("HEATLENS_REPORT_DIR", str(tmp_path / "report"))
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=dict(os.environ))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "first (" in html and "second (" in html  # summary table rows
    assert "p-value" in html  # paired bootstrap table
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4
    assert (tmp_path / "report" / "report.html").exists()
