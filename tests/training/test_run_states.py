"""A run is FINISHED only when everything is logged: killed jobs and config errors leave honest traces."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from test_train_e2e import runs_of, train_subprocess

from heatlens.cli.checks import check_job
from heatlens.errors import HeatlensError
from heatlens.paths import CONFIG_DIR

pytestmark = pytest.mark.slow
CALLBACKS = str(Path(__file__).parent)


def test_a_job_killed_after_fit_leaves_its_run_unfinished(tmp_path) -> None:
    result = train_subprocess("+callbacks.kill._target_=crash_callback.SignalAt", "+callbacks.kill.what=kill",
                   f"hydra.run.dir={tmp_path}", experiment="states-killed", python_path=Path(CALLBACKS))
    assert result.returncode != 0
    (run,) = runs_of("states-killed")
    # fit completed and was logged, but test and explanations never ran: the run must not look complete.
    assert run.info.status == "RUNNING"
    assert "val/loss" in run.data.metrics and "test/acc" not in run.data.metrics


def test_ctrl_c_ends_the_run_killed(tmp_path) -> None:
    result = train_subprocess("+callbacks.stop._target_=crash_callback.SignalAt", "+callbacks.stop.what=interrupt",
                   f"hydra.run.dir={tmp_path}", experiment="states-interrupted", python_path=Path(CALLBACKS))
    assert result.returncode != 0
    (run,) = runs_of("states-interrupted")
    assert run.info.status == "KILLED" and "error" not in run.data.tags


@pytest.mark.parametrize(("override", "named"), [
    ("optimizer.lr=abc", "optimizer.lr"),
    ("selection_metric=val/recall/Nope", "selection_metric"),
    ("trainer.max_epochs=two", "max_epochs"),
    ("data.balance=sometimes", "data.balance"),
    ("seed=1.5", "seed"),
])
def test_a_bad_value_is_one_line_naming_it_before_any_work(override: str, named: str, tmp_path) -> None:
    # check_job runs before train.py creates the MLflow run; that a user error then costs one stderr
    # line and no run is checked end to end in test_train_e2e.
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[override])
        job = compose("train", overrides=[override], return_hydra_config=True)
    with open_dict(job):
        job.hydra.runtime.output_dir = str(tmp_path)  # what Hydra sets when it runs the job
    HydraConfig.instance().set_config(job)
    with pytest.raises(HeatlensError) as caught:
        check_job(cfg)
    message = str(caught.value)
    assert named in message and "\n" not in message
    assert not any(tmp_path.iterdir())  # nothing decoded, generated or written yet
