"""A crafted checkpoint never runs its payload: through `ckpt_path=`, `checkpoint=` (a local file and a run
artifact), `backbone.weights_file` and the served model's weights; each is refused with one line naming it."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from in_process import run_main
from mlflow.tracking import MlflowClient
from payloads import crafted_checkpoint

from heatlens.cli.explain import main as explain_main
from heatlens.cli.train import main as train_main
from heatlens.models import ModelConfigError, build_model
from heatlens.models.checkpoint_read import UnsafeCheckpointError, load_checkpoint
from heatlens.tracking.model import HeatlensClassifier

pytestmark = pytest.mark.slow

TINY = ["data.num_images=40", "data.image_size=32", "data.source_size=32", "data.batch_size=16",
        "trainer.max_epochs=1", "explain=none", "callbacks=none", "trainer.num_sanity_val_steps=0", "logger.figures=false"]


def one_refusal(stderr: str, path: Path) -> str:
    """The single error line of a refused file (no traceback)."""
    lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert str(path) in lines[0] and "refused" in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[str, Path]:
    """(run id, its output folder): one tiny finished training run with uploaded checkpoints."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    result = run_main(train_main, *TINY, f"hydra.run.dir={out}", "logger.experiment_name=safety-tiny",
                      env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("safety-tiny").experiment_id])
    return run.info.run_id, out


def test_the_crafted_file_is_a_live_payload(tmp_path) -> None:
    """The reference: loaded the unsafe way, the file does run its code (so a test below that sees no
    marker proves the loader refused it, not that the payload was inert)."""
    marker = tmp_path / "ran"
    evil = crafted_checkpoint(tmp_path / "evil.ckpt", marker)
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_heatlens_checkpoints_load_with_weights_only(tiny_run) -> None:
    _, out = tiny_run
    files = sorted((out / "checkpoints").glob("*.ckpt"))
    assert len(files) == 7  # 4 class recalls, disease mean, macro, last
    for path in files:
        assert "state_dict" in load_checkpoint(path, "checkpoint")


def test_resume_from_a_crafted_checkpoint_refuses_it(tiny_run, tmp_path) -> None:
    _, out = tiny_run
    marker = tmp_path / "ran"
    real = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    evil = crafted_checkpoint(tmp_path / "last.ckpt", marker, real)
    result = run_main(train_main, *TINY, f"ckpt_path={evil}", f"hydra.run.dir={tmp_path / 'resumed'}",
                      "logger.experiment_name=safety-resume")
    assert result.returncode != 0
    line = one_refusal(result.stderr, evil)
    assert "ckpt_path=" in line and "posix.system" in line
    assert not marker.exists()
    assert MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).get_experiment_by_name("safety-resume") is None


@pytest.mark.parametrize("source", ["local file", "run artifact"])
def test_reexplain_of_a_crafted_checkpoint_refuses_it(tiny_run, tmp_path, source: str) -> None:
    run_id, out = tiny_run
    marker = tmp_path / "ran"
    real = torch.load(out / "checkpoints" / "best-recall_macro.ckpt", weights_only=True)
    evil = crafted_checkpoint(tmp_path / "evil.ckpt", marker, real)
    checkpoint = str(evil)
    if source == "run artifact":
        MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).log_artifact(run_id, str(evil), "crafted")
        checkpoint = "crafted/evil.ckpt"
    result = run_main(explain_main, f"run_id={run_id}", f"checkpoint={checkpoint}",
                      f"hydra.run.dir={tmp_path / 'explain'}", program="heatlens-explain")
    assert result.returncode != 0
    one_refusal(result.stderr, Path(checkpoint).name if source == "run artifact" else evil)
    assert not marker.exists()


def test_a_crafted_weights_file_is_refused(tmp_path) -> None:
    marker = tmp_path / "ran"
    evil = crafted_checkpoint(tmp_path / "weights.pth", marker, build_model(
        {"name": "simple_cnn", "pretrained": False}, {"name": "gap_linear"}, 4, 1).backbone.state_dict())
    with pytest.raises(ModelConfigError, match=r"backbone.weights_file=.*weights.pth refused.*posix.system"):
        build_model({"name": "simple_cnn", "pretrained": False, "weights_file": str(evil)},
                    {"name": "gap_linear"}, 4, 1)
    assert not marker.exists()


def test_served_model_with_crafted_weights_refuses_them(tmp_path) -> None:
    marker = tmp_path / "ran"
    evil = crafted_checkpoint(tmp_path / "weights.pt", marker)
    config = {"class_names": ["a", "b"], "image_size": 32, "channels": 1, "resize": "pad", "mean": [0.5],
              "std": [0.25], "backbone": {"name": "simple_cnn", "pretrained": False}, "head": {"name": "gap_linear"}}
    context = SimpleNamespace(model_config=config, artifacts={"weights": str(evil)})
    with pytest.raises(UnsafeCheckpointError, match="model artifact weights=.*weights.pt refused"):
        HeatlensClassifier().load_context(context)
    assert not marker.exists()
