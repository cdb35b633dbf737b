"""The selection metric follows `data.task`: null means the task's default, and a metric of the other task
stops the run in one line before any data pass."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from heatlens.cli.checks import check_job
from heatlens.errors import HeatlensError
from heatlens.paths import CONFIG_DIR


def _checked(tmp_path, *overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
        job = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(job):
        job.hydra.runtime.output_dir = str(tmp_path)
    HydraConfig.instance().set_config(job)
    return cfg, check_job(cfg)


@pytest.mark.parametrize(("task", "default"), [("multiclass", "val/recall_macro"), ("multilabel", "val/auroc_macro")])
def test_a_null_selection_metric_is_the_tasks_default(task: str, default: str, tmp_path) -> None:
    cfg, job = _checked(tmp_path, f"data.task={task}")
    assert cfg.selection_metric == default and job.config["selection_metric"] == default
    assert default in job.checkpoints
    if task == "multilabel":
        assert job.class_names == ["COVID", "Lung_Opacity", "Viral Pneumonia"]  # no Normal finding
        assert "val/auroc/Lung_Opacity" in job.checkpoints and "val/recall_macro" not in job.checkpoints
    assert not any(tmp_path.iterdir())  # nothing generated yet


@pytest.mark.parametrize(("task", "metric"), [("multilabel", "val/recall_macro"), ("multilabel", "val/recall/COVID"),
                                              ("multiclass", "val/auroc_macro")])
def test_a_metric_of_the_other_task_is_one_line(task: str, metric: str, tmp_path) -> None:
    with pytest.raises(HeatlensError) as caught:
        _checked(tmp_path, f"data.task={task}", f"selection_metric={metric}")
    message = str(caught.value)
    assert message.startswith(f"selection_metric={metric!r} is a ") and f"data.task={task}" in message
    assert "\n" not in message


def test_an_explicit_finding_metric_wins(tmp_path) -> None:
    cfg, job = _checked(tmp_path, "data.task=multilabel", "selection_metric=val/auroc/COVID")
    assert job.config["selection_metric"] == "val/auroc/COVID"
