"""A job whose files hit the size limit (RLIMIT_FSIZE: the kernel refuses to grow any file past it, as a
full disk does) leaves every checkpoint whole or absent and fails with one line, recorded in its run."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

from heatlens.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow

# simple_cnn's weights-only checkpoints are ~410 kB, `last.ckpt` (with optimizer state) ~1.2 MB: the
# limit lets the first kind through and stops the second half-way.
LIMIT = 700_000


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def test_a_full_disk_leaves_whole_checkpoints_and_one_line(tmp_path, monkeypatch) -> None:
    uri = f"file://{tmp_path / 'mlruns'}"  # a file store: its files stay far below the limit
    out = tmp_path / "run"
    args = ["data.num_images=40", "data.image_size=32", "data.source_size=32", "data.batch_size=16",
            "trainer.max_epochs=2", "explain=none", "callbacks=none", "trainer.num_sanity_val_steps=0",
            "logger.experiment_name=full-disk", f"hydra.run.dir={out}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ALLOW_FILE_STORE": "true", "OMP_NUM_THREADS": "1",
           "HEATLENS_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "train.py"), *args], capture_output=True,
                            text=True, env=env, timeout=300, preexec_fn=_limit_file_size)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    (line,) = [line for line in result.stderr.splitlines() if "error:" in line]
    last = out / "checkpoints" / "last.ckpt"
    assert f"could not write checkpoint {last}: file size limit reached" in line

    files = sorted((out / "checkpoints").iterdir())
    assert not last.exists() and all(".tmp-" not in f.name for f in files)
    assert len(files) == 6  # the best checkpoints of epoch 0, each whole: it loads, its weights complete
    for path in files:
        assert torch.load(path, weights_only=True)["epoch"] == 0
    assert len({path.stat().st_ino for path in files}) == 1  # the same bytes: written once, linked 5 times

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("full-disk").experiment_id])
    assert run.info.status == "FAILED"
    assert f"could not write checkpoint {last}" in run.data.tags["error"]
