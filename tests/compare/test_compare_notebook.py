"""notebooks/compare_runs.ipynb executes top to bottom on an experiment whose runs have two test sets
(and one failed run): it pairs only runs sharing a test set and says so in its output."""

from __future__ import annotations

import os

import nbformat
import numpy as np
import pytest
from fake_runs import log_fake_run, make_fake_run
from nbclient import NotebookClient

from heatlens.paths import PROJECT_ROOT


@pytest.mark.slow
def test_notebook_pairs_only_runs_sharing_a_test_set(mlflow_store, tmp_path, monkeypatch):
    client, experiment_id, experiment, uri = mlflow_store
    other = make_fake_run(5)
    other.ids = np.char.add(other.ids, "_other")
    log_fake_run(client, experiment_id, "elsewhere", other)  # alone on its test set, logged first
    for name, seed in (("first", 0), ("second", 3)):
        log_fake_run(client, experiment_id, name, make_fake_run(seed), thumbnails=True)
    log_fake_run(client, experiment_id, "crashed", make_fake_run(1), status="FAILED")
    monkeypatch.setenv("HEATLENS_EXPERIMENT", experiment)
    monkeypatch.delenv("HEATLENS_PAIR", raising=False)
    monkeypatch.setenv("HEATLENS_N_BOOT", "200")
    monkeypatch.setenv("HEATLENS_REPORT_DIR", str(tmp_path / "report"))
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=dict(os.environ))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "skipped 1 run(s) that are not finished models: crashed (" in printed
    assert "3 finished runs" in printed
    assert "evaluated on 2 different test sets" in printed
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiment_id])}
    assert f"Paired: A = first ({runs['first'][:6]}), B = second ({runs['second'][:6]})" in printed
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "first (" in html and "second (" in html and "elsewhere (" in html  # run tables
    assert "p-value" in html  # paired bootstrap table
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # AOPC intervals, perturbation curves, side by side, heatmap correlation
    assert (tmp_path / "report" / "report.html").exists()
