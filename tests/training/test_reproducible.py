"""Same seed, same numbers: one command run twice logs identical metrics at every epoch, explanations included."""

from __future__ import annotations

import math
import os

import pytest
from mlflow.tracking import MlflowClient
from test_train_e2e import runs_of, train, train_subprocess

pytestmark = pytest.mark.slow

# Augmentations stay on (the default data.augment) and two loader workers draw them.
SAME_COMMAND = ["trainer.max_epochs=2", "data.num_workers=2", "explain=default", "explain.max_images=24",
                "explain.aopc.region_size=8", "explain.callbacks.embeddings.raw_size=8"]


def _comparable(value: float) -> float | str:
    return "nan" if math.isnan(value) else value  # nan != nan, yet two runs that both log nan agree


def _histories(run) -> dict[str, list[tuple[int, float | str]]]:
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    return {key: [(m.step, _comparable(m.value)) for m in client.get_metric_history(run.info.run_id, key)]
            for key in sorted(run.data.metrics) if not key.startswith("time/")}


def test_two_runs_of_one_command_log_identical_metric_histories(tmp_path) -> None:
    # One run in this process, one in a fresh interpreter (another hash seed, no state left by the first).
    for name, runner in (("a", train), ("b", train_subprocess)):
        result = runner(*SAME_COMMAND, f"hydra.run.dir={tmp_path / name}", experiment="reproducible")
        assert result.returncode == 0, result.stderr[-3000:]
    first, second = sorted(runs_of("reproducible"), key=lambda r: r.info.start_time)
    histories = _histories(first)
    assert {"train/loss", "val/loss", "test/acc", "xai/aopc_morf", "xai/knn_acc_embedding"} <= set(histories)
    # Two epochs: the second shows that the RNG state carried across epochs (augmentations, loader workers)
    # repeats too; it really trained: the loss moved.
    assert len({value for _, value in histories["train/loss"]}) == 2
    assert histories == _histories(second)
