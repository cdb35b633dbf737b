"""The MLflow door: URI resolution, RunHandle logging read back through MlflowClient, failures, resumes."""

from __future__ import annotations

from unittest.mock import patch

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from mlflow.artifacts import download_artifacts

from heatlens.tracking import RunHandle, TrackingError, flatten, log_run_config, record_failure, resolve_tracking_uri
from heatlens.tracking.setup import artifact_location_for, ensure_experiment


def test_tracking_uri_precedence(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("HEATLENS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("HEATLENS_HOME", str(tmp_path / "home"))
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path.resolve() / 'home' / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert resolve_tracking_uri(None) == "http://tracking:5000"
    configured = f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    assert resolve_tracking_uri(configured) == configured
    assert (tmp_path / "sub").is_dir()  # sqlite needs its folder
    assert artifact_location_for(configured, "my exp") == (tmp_path / "sub" / "artifacts" / "my_exp").as_uri()
    assert artifact_location_for("http://tracking:5000", "e") is None


def test_flatten_uses_override_style_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None, "f": {}}) == {
        "a.b": 1, "a.c.d": [1, 2], "e": None, "f": {}
    }


def _download(run, path: str, tmp_path) -> str:
    return download_artifacts(run_id=run.run_id, artifact_path=path, dst_path=str(tmp_path), tracking_uri=run.tracking_uri)


def test_run_handle_logs_what_the_client_reads_back(run, tmp_path) -> None:
    run.log_metrics({"xai/aopc_morf": 0.25, "val/recall/Viral Pneumonia": 0.5})
    run.log_metrics({"xai/aopc_morf": 0.5}, step=3)
    run.log_params({"short": 1, "long": "x" * 7000})
    run.set_tags({"sweep_id": "none"})
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    run.log_figure(fig, "figures/gradcam/overlay.png")
    run.log_arrays("explain/gradcam.npz", maps=np.arange(6.0).reshape(2, 3), ids=np.array(["a", "b"]))
    run.log_dict({"k": [1, 2]}, "reports/x.json")
    run.log_text("hello", "reports/x.txt")

    data = run.client.get_run(run.run_id).data
    assert data.metrics == {"xai/aopc_morf": 0.5, "val/recall/Viral Pneumonia": 0.5}
    assert run.metric_history("xai/aopc_morf") == [(0, 0.25), (3, 0.5)]
    assert data.params["short"] == "1" and len(data.params["long"]) == 6000 and data.params["long"].endswith("...")
    assert data.tags["sweep_id"] == "none"
    with open(_download(run, "figures/gradcam/overlay.png", tmp_path), "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    arrays = np.load(_download(run, "explain/gradcam.npz", tmp_path))
    assert arrays["maps"].tolist() == [[0, 1, 2], [3, 4, 5]] and arrays["ids"].tolist() == ["a", "b"]
    assert open(_download(run, "reports/x.txt", tmp_path)).read() == "hello"


def test_a_run_handle_without_figures_closes_them_unrendered_and_logs_the_rest(run) -> None:
    quiet = RunHandle(run.tracking_uri, run.run_id, figures=False)
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    drawn = []
    fig.canvas.mpl_connect("draw_event", drawn.append)
    with patch.object(plt, "close", wraps=plt.close) as close:
        quiet.log_figure(fig, "figures/roc.png")
    close.assert_called_once_with(fig)
    asked = []
    quiet.log_figure(lambda: asked.append("drawn") or Figure(), "figures/aopc/curves.png")  # never drawn
    quiet.log_arrays("explain/gradcam.npz", maps=np.zeros(2))
    assert drawn == [] and asked == [] and [a.path for a in run.client.list_artifacts(run.run_id, "figures")] == []
    assert [a.path for a in run.client.list_artifacts(run.run_id, "explain")] == ["explain/gradcam.npz"]


def test_a_figure_given_as_its_drawing_function_is_drawn_saved_and_closed(run, tmp_path) -> None:
    drawn = []

    def draw() -> Figure:
        figure = plt.figure()
        figure.subplots().plot([0, 1], [1, 0])
        drawn.append(figure)
        return figure

    run.log_figure(draw, "figures/roc.png")
    (figure,) = drawn
    assert not plt.fignum_exists(figure.number)  # closed after saving
    with open(_download(run, "figures/roc.png", tmp_path), "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"


def test_record_failure_marks_the_run_failed_with_the_error(run, tmp_path) -> None:
    try:
        raise RuntimeError("loss became NaN at epoch 3")
    except RuntimeError as error:
        record_failure(run, error)
    info = run.client.get_run(run.run_id)
    assert info.info.status == "FAILED"
    assert info.data.tags["error"] == "RuntimeError: loss became NaN at epoch 3"
    text = open(_download(run, "reports/error.txt", tmp_path)).read()
    assert "Traceback" in text and "loss became NaN" in text


def test_resumed_run_keeps_its_params_and_stores_the_new_config_aside(run, tmp_path) -> None:
    log_run_config(run, {"trainer": {"max_epochs": 2}}, "trainer:\n  max_epochs: 2\n", "[]\n", resumed=False)
    log_run_config(run, {"trainer": {"max_epochs": 5}, "ckpt_path": "last.ckpt"}, "new", "- trainer.max_epochs=5\n", resumed=True)
    params = run.client.get_run(run.run_id).data.params
    assert params == {"trainer.max_epochs": "2", "ckpt_path": "last.ckpt"}
    assert open(_download(run, "config/resumed/1/config.yaml", tmp_path)).read() == "new"
    assert "max_epochs: 2" in open(_download(run, "config/config.yaml", tmp_path)).read()


def test_deleted_experiment_is_a_clear_error(experiment) -> None:
    client, experiment_id, name = experiment
    client.delete_experiment(experiment_id)
    with pytest.raises(TrackingError, match=f"logger.experiment_name='{name}' is deleted"):
        ensure_experiment(client.tracking_uri, name)
