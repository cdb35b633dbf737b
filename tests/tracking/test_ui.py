"""`heatlens-ui`: the MLflow UI whose experiment links open the runs table, not MLflow 3's GenAI overview.

What decides the landing view is the browser's workflow type (heatlens.tracking.ui): the first tests check
the page heatlens serves sets it and that the installed MLflow bundle still reads that key, with that
default; the last opens the home page's experiment link in a real server and headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from stores import sqlite_store

from heatlens.cli.ui import JOB_EXECUTION, UiError, server_command, server_environment
from heatlens.tracking.setup import ensure_experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BUNDLE_DIR = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"


def test_the_served_page_sets_the_machine_learning_view_before_the_bundle_runs() -> None:
    from fastapi.testclient import TestClient

    # The server's own app: imported here, it hooks MLflow's Flask app of this process.
    from heatlens.tracking.ui import LANDING_SCRIPT, MACHINE_LEARNING, WORKFLOW_TYPE_KEY, app, lead_with_runs

    page = TestClient(app, base_url="http://localhost").get("/").text
    assert page.index(LANDING_SCRIPT) < page.index("<script defer")
    assert f'localStorage.setItem("{WORKFLOW_TYPE_KEY}","\\"{MACHINE_LEARNING}\\"")' in LANDING_SCRIPT
    assert "if(!localStorage.getItem(" in LANDING_SCRIPT  # a user's own choice is kept
    assert lead_with_runs("<html><head><title>") == f"<html><head>{LANDING_SCRIPT}<title>"


def test_the_installed_mlflow_ui_reads_that_key_and_defaults_to_genai() -> None:
    """The exact client-side setting: if MLflow renames the key or its values, this fails first."""
    (bundle_file,) = BUNDLE_DIR.glob("main.*.js")
    bundle = bundle_file.read_text(encoding="utf-8")
    assert 'e.MACHINE_LEARNING="machine_learning"' in bundle
    # useLocalStorage stores under `${key}_v${version}`, JSON-encoded.
    assert re.search(r'\{key:"mlflow\.workflowType",version:1,initialValue:\w+\}', bundle)
    assert re.search(r"\w+=\(e,t\)=>`\$\{e\}_v\$\{t\}`", bundle)
    assert re.search(r"const \w+=\w+\.GENAI,\w+=\(0,\w+\.createContext\)\(\{workflowType:", bundle)


def test_a_tracking_server_is_not_started_again() -> None:
    with pytest.raises(UiError, match="--backend-store-uri=http://team:5000 is a tracking server"):
        server_command("http://team:5000", "127.0.0.1", 5000)


def test_the_servers_job_runner_is_off_unless_the_user_turns_it_on() -> None:
    assert server_environment({"PATH": "/bin"}) == {"PATH": "/bin", JOB_EXECUTION: "false"}
    assert server_environment({JOB_EXECUTION: "true"})[JOB_EXECUTION] == "true"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dom(url: str) -> str:
    with tempfile.TemporaryDirectory() as profile:  # a new user: nothing in localStorage
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--virtual-time-budget=15000", "--window-size=1400,1000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        ).stdout


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: no browser to open the UI with")
def test_the_home_page_experiment_link_opens_the_runs_table(tmp_path: Path) -> None:
    uri = sqlite_store(tmp_path)
    experiment_id = ensure_experiment(uri, "landing")
    MlflowClient(uri).create_run(experiment_id, run_name="landing-check-run")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen(server_command(uri, "127.0.0.1", port), stdout=log, stderr=subprocess.STDOUT,
                                  env=server_environment(os.environ))
    try:
        deadline = time.monotonic() + 150  # MLflow's server takes 10 s to start on an idle machine, more when busy
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        home = _dom(f"{base}/")
        link = f'href="#/experiments/{experiment_id}"'
        assert link in home, home[-2000:]  # how the home page links to the experiment: no ?workflowType=
        page = _dom(f"{base}/#/experiments/{experiment_id}")
        assert "landing-check-run" in page and "Detect Issues" not in page, page[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
